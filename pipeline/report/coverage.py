"""Coverage of one consolidation: which failures its skill covers, the fate of every lesson, the
evidence behind every statement, drift on runs it was not built from, and what successful runs
of its sources do differently (the `contrasts` analyse wrote).

Reads the lake through the views of ``pipeline.report.views`` and the ``sql/coverage_*.sql``
queries; writes nothing to the lake. The result is a ``Coverage`` of polars frames (``tables()``),
which the command prints, writes as Parquet (``--out``) and draws in the HTML report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipeline import sql as sqlfiles
from pipeline.console import plural
from pipeline.lake import Lake
from pipeline.report import drift as drift_
from pipeline.report.runs import (
    CoverageError,
    check_skill_folder,
    held_out_runs,
    resolve_run,
    run_scope,
    run_threshold,
)
from pipeline.report.views import connect_views

THIN_TRAJECTORIES = 3  # a statement resting on fewer distinct runs may be one run's quirk


@dataclass
class Coverage:
    run: dict
    trajectories: pl.DataFrame  # coverage_trajectories
    by: pl.DataFrame  # coverage_by
    fate: pl.DataFrame  # lesson_fate of the run
    fate_summary: pl.DataFrame  # coverage_fate_summary
    drop_reasons: pl.DataFrame  # coverage_drop_reasons
    statements: pl.DataFrame  # coverage_statements
    sections: pl.DataFrame  # coverage_sections
    costs: pl.DataFrame  # examples/cost_by_stage_model
    contrasts: pl.DataFrame  # coverage_contrasts: behaviours that go with success
    drift: drift_.Drift | None
    settings: dict
    warnings: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every result as a named frame (the names are the Parquet files of ``write``)."""
        out = {
            "coverage_trajectories": self.trajectories,
            "coverage_by": self.by,
            "lesson_fate": self.fate,
            "coverage_fate_summary": self.fate_summary,
            "coverage_drop_reasons": self.drop_reasons,
            "coverage_statements": self.statements,
            "coverage_sections": self.sections,
            "cost_by_stage_model": self.costs,
            "coverage_contrasts": self.contrasts,
        }
        if self.drift is not None:
            out["drift_lessons"] = self.drift.lessons
            out["drift_trajectories"] = self.drift.trajectories
        return out

    @property
    def summary(self) -> dict:
        """Headline figures, all counted from the tables."""

        def part(outcome: str) -> dict:
            row = self.by.filter(
                (pl.col("outcome") == outcome) & (pl.col("dimension") == "all")
            ).to_dicts()
            return row[0] if row else {"n_trajectories": 0, "n_covered": 0, "share_covered": None}

        failures, successes = part("failure"), part("success")
        fates = dict(self.fate_summary.group_by("fate").agg(pl.col("n_lessons").sum()).iter_rows())
        lines = self.statements.filter(pl.col("evidence") == "lessons")
        items = statement_items(self.statements)
        return {
            "run_id": self.run["run_id"],
            "failures": failures["n_trajectories"],
            "failures_covered": failures["n_covered"],
            "share_failures_covered": failures["share_covered"],
            "successes": successes["n_trajectories"],
            "successes_covered": successes["n_covered"],
            "share_successes_covered": successes["share_covered"],
            "lessons_read": self.fate.height,
            "lessons_merged": fates.get("merged", 0),
            "lessons_deduplicated": fates.get("deduplicated", 0),
            "lessons_dropped": fates.get("dropped", 0),
            "lessons_unaccounted": fates.get("unaccounted", 0),
            "statements": items.height,
            "statements_thin": int(items["is_thin"].sum()),
            "statement_lines": lines.height,
            "statement_lines_thin": int(lines["is_thin"].sum()),
            "statements_without_evidence": self.statements.filter(
                pl.col("evidence") == "none"
            ).height,
            "sections_thin": int(self.sections["is_thin"].sum()),
            "cost_usd": float(self.costs["cost_usd"].sum()) if self.costs.height else 0.0,
            "model_calls": int(self.costs["n_calls"].sum()) if self.costs.height else 0,
            "contrasts": self.contrasts.height,
            "contrast_findings": int(self.contrasts["is_finding"].sum()),
            "drift": self.drift.summary if self.drift is not None else None,
        }

    def to_json(self) -> dict:
        """The summary and the aggregate tables (per-lesson and per-run rows go to ``write``)."""
        return {
            "run": self.run,
            "settings": self.settings,
            "summary": self.summary,
            "warnings": self.warnings,
            "coverage_by": self.by.to_dicts(),
            "fate_summary": self.fate_summary.to_dicts(),
            "drop_reasons": self.drop_reasons.to_dicts(),
            "statements": self.statements.to_dicts(),
            "sections": self.sections.to_dicts(),
            "cost_by_stage_model": self.costs.to_dicts(),
            "contrasts": self.contrasts.to_dicts(),
        }

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Every table as ``<out_dir>/<name>.parquet`` and the summary as ``summary.json``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in self.tables().items():
            frame.write_parquet(out / f"{name}.parquet")
            written.append(out / f"{name}.parquet")
        (out / "summary.json").write_text(json.dumps(self.to_json(), indent=2, default=str))
        return [*written, out / "summary.json"]


def statement_items(statements: pl.DataFrame) -> pl.DataFrame:
    """One row per consolidated statement backed by lessons (the lines sharing an item_id; a
    line without one stands alone), with the line shown for it (the first in SKILL.md, else
    the first) and its support: every line of an item rests on the same lessons."""
    lines = statements.filter(pl.col("evidence") == "lessons").with_columns(
        item=pl.coalesce("item_id", pl.format("{}:{}", "file", "line_no")),
        _rank=pl.when(pl.col("file") == "SKILL.md").then(0).otherwise(1),
    )
    return (
        lines.sort("item", "_rank", "file", "line_no")
        .group_by("item", maintain_order=True)
        .agg(
            pl.col("file", "line_no", "section", "text").first(),
            pl.len().alias("n_lines"),
            pl.col(
                "n_lessons", "n_trajectories", "n_tasks", "n_failures", "n_successes", "is_thin"
            ).max(),
        )
        .sort("n_trajectories", "file", "line_no")
    )


def coverage(
    lake: Lake,
    *,
    run_id: str | None = None,
    against: Lake | str | os.PathLike | None = None,
    where: str | None = None,
    skill: str | os.PathLike | None = None,
    thin: int = THIN_TRAJECTORIES,
    match_threshold: float | None = None,
    redistill_below: float = drift_.REDISTILL_BELOW,
    embedder: str = "lexical",
) -> Coverage:
    """Coverage of one consolidation run (`run_id`, the run that wrote `skill`, or the newest).

    The runs counted are the run's scope (`run_trajectories`: the runs its --where selected).
    Drift is measured on the runs of another lake (`against`) or on the runs of this one that
    match `where` (an SQL condition on trajectories), which are then left out of the rest; a new
    lesson matches at `match_threshold` (default: the run's own semantic threshold).
    """
    if against is not None and where is not None:
        raise CoverageError("give --against or --where, not both")
    con = connect_views(lake)
    try:
        run = resolve_run(con, lake, run_id=run_id, skill=skill)
        held_out = held_out_runs(con, lake, where)
        con.register("held_out", held_out)
        rid = run["run_id"]
        con.sql(
            "create temp table run_scope as "
            "select trajectory_id, scope from run_trajectories where run_id = $run_id",
            params={"run_id": rid},
        )
        scope = run_scope(con, run)
        if match_threshold is None:
            match_threshold = run_threshold(run)
        # Every fate is needed three times over: work it out once.
        con.sql(
            "create temp table run_fate as select * from lesson_fate where run_id = $run_id",
            params={"run_id": rid},
        )
        fate = con.sql("select * from run_fate order by lesson_id").pl()
        trajectories = sqlfiles.query(con, "coverage_trajectories")
        con.register("coverage_trajectories", trajectories)
        result = Coverage(
            run=run,
            trajectories=trajectories,
            by=sqlfiles.query(con, "coverage_by"),
            fate=fate,
            fate_summary=sqlfiles.query(con, "coverage_fate_summary"),
            drop_reasons=sqlfiles.query(con, "coverage_drop_reasons"),
            statements=sqlfiles.query(con, "coverage_statements", run_id=rid, thin=thin),
            sections=sqlfiles.query(con, "coverage_sections", run_id=rid, thin=thin),
            costs=sqlfiles.query(con, "examples/cost_by_stage_model"),
            contrasts=sqlfiles.query(con, "coverage_contrasts", run_id=rid),
            drift=None,
            settings={
                "scope": scope,
                "thin": thin,
                "match_threshold": match_threshold,
                "redistill_below": redistill_below,
                "embedder": embedder,
                "where": where,
                "against": None if against is None else str(_as_lake(against).uri),
            },
        )
        result.warnings += _check_run(result, held_out)
        result.warnings += check_skill_folder(result.statements, skill or run.get("out_dir"))
        if where is not None or against is not None:
            con.register("lesson_keys", lesson_keys(con))
            targets = sqlfiles.query(
                con, "coverage_skill_targets", run_id=rid, max_titles=drift_.MAX_TITLES
            )
            if against is not None:
                new_lessons, new_runs, origin = _new_batch(_as_lake(against))
            else:
                new_lessons = sqlfiles.query(con, "coverage_new_lessons")
                new_runs = sqlfiles.query(con, "coverage_new_trajectories")
                origin = f"where: {where}"
            result.drift = drift_.measure(
                new_lessons,
                new_runs,
                targets,
                origin=origin,
                threshold=match_threshold,
                embedder=embedder,
                redistill_below=redistill_below,
            )
        return result
    finally:
        con.close()


def lesson_keys(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """lesson_id, block and title of every lesson: the keys consolidation compares lessons on."""
    keys = sqlfiles.query(con, "consolidate_lesson_facts", latest_only=False)
    return keys.select("lesson_id", "block", "title")


def _as_lake(value: Lake | str | os.PathLike) -> Lake:
    return value if isinstance(value, Lake) else Lake(value)


def _new_batch(other: Lake) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """Lessons and runs of another lake: every run of it counts as new."""
    con = connect_views(other)
    try:
        con.register("held_out", con.sql("select trajectory_id from trajectories").pl())
        con.register("lesson_keys", lesson_keys(con))
        runs = sqlfiles.query(con, "coverage_new_trajectories")
        lessons = sqlfiles.query(con, "coverage_new_lessons")
    finally:
        con.close()
    if runs.height == 0:
        raise CoverageError(f"--against {other.uri} holds no trajectories: ingest them first")
    if lessons.height == 0:
        raise CoverageError(
            f"--against {other.uri} holds no lessons: run `trace2skill analyse --lake "
            f"{other.uri}` first"
        )
    return lessons, runs, f"against: {other.uri}"


def _check_run(result: Coverage, held_out: pl.DataFrame) -> list[str]:
    """Faults worth a warning: held-out runs the skill was built from, unaccounted lessons."""
    out = []
    leaked = result.fate.join(held_out, on="trajectory_id", how="semi")
    if leaked.height:
        out.append(
            f"{plural(leaked.height, 'lesson')} of held-out runs were read by run "
            f"{result.run['run_id']}: "
            "the held-out split is not independent of the skill"
        )
    lost = result.fate.filter(pl.col("fate") == "unaccounted")
    if lost.height:
        out.append(
            f"{plural(lost.height, 'lesson')} did not reach the skill and no drop row says why "
            f"(e.g. {', '.join(lost['lesson_id'].head(3).to_list())})"
        )
    gaps = result.statements.filter(pl.col("evidence") == "none")
    if gaps.height:
        out.append(f"added or revised statements without a lesson behind them: {gaps.height}")
    return out
