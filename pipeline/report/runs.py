"""Which consolidation run coverage reports on, and which runs it counts.

Reads `consolidations` and `run_trajectories` (the runs each consolidation was built from, from
the --where it recorded) through a connection of ``pipeline.report.views``, and the skill folder a
run wrote; writes nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import polars as pl

from pipeline.errors import UserError
from pipeline.lake import Lake
from pipeline.report import drift as drift_
from pipeline.report.views import run_where
from pipeline.skill.folder import RUN_KEY, folder_run


class CoverageError(UserError, ValueError):
    """Coverage cannot be computed as asked (no run, bad option); the message says what to do."""


def resolve_run(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    *,
    run_id: str | None = None,
    skill: str | os.PathLike | None = None,
) -> dict:
    """The consolidation row to report on: by id, by the folder it wrote, or the newest.

    A folder that names its run (SKILL.md's `metadata.consolidation-run`) is reported on that run
    or not at all; a folder that names none, by the newest run that wrote to its path."""
    runs = con.sql("select * from consolidations order by created_at desc, run_id desc").pl()
    if runs.height == 0:
        raise CoverageError(
            f"{lake.uri} holds no consolidation run: run `trace2skill consolidate` first"
        )
    known = ", ".join(runs["run_id"].head(10).to_list())
    if run_id is not None:
        picked = runs.filter(pl.col("run_id") == run_id)
        if picked.height == 0:
            raise CoverageError(f"no consolidation run {run_id!r} in {lake.uri}; known: {known}")
    elif skill is not None and (named := folder_run(skill)) is not None:
        picked = runs.filter(pl.col("run_id") == named)
        if picked.height == 0:
            raise CoverageError(
                f"{Path(skill) / 'SKILL.md'} names consolidation run {named!r} (metadata {RUN_KEY}), which "
                f"has no row in {lake.uri}: the run did not finish writing to this lake, or wrote "
                "to another one; rerun `trace2skill consolidate`, or pass --lake or --run RUN_ID"
            )
    elif skill is not None:
        wanted = Path(skill).resolve()
        picked = runs.filter(
            pl.col("out_dir").map_elements(
                lambda d: Path(d).resolve() == wanted, return_dtype=pl.Boolean
            )
        )
        if picked.height == 0:
            dirs = ", ".join(sorted(set(runs["out_dir"].to_list()))[:10])
            raise CoverageError(
                f"no consolidation run in {lake.uri} wrote {skill}; runs wrote: {dirs} "
                "(or pass --run RUN_ID)"
            )
    else:
        picked = runs
    return picked.row(0, named=True)


def held_out_runs(con: duckdb.DuckDBPyConnection, lake: Lake, where: str | None) -> pl.DataFrame:
    """trajectory_id of the runs `where` selects (none without it)."""
    if where is None:
        return pl.DataFrame({"trajectory_id": []}, schema={"trajectory_id": pl.String})
    if ";" in where:
        raise CoverageError(f"--where must be one condition on trajectories, got {where!r}")
    try:
        # The condition is the user's own SQL, like a query given to `trace2skill sql`.
        held = con.sql(f"select trajectory_id from trajectories where ({where})").pl()
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise CoverageError(
            f"--where {where!r} is not a condition on trajectories: {first}"
        ) from None
    if held.height == 0:
        raise CoverageError(f"--where {where!r} selects no trajectory of {lake.uri}")
    return held


def run_scope(con: duckdb.DuckDBPyConnection, run: dict) -> dict:
    """How the run's scope was found, and how many of the lake's runs it holds."""
    kinds = [k for (k,) in con.sql("select distinct scope from run_scope order by 1").fetchall()]
    n_scope = con.sql("select count(*) from run_scope").fetchall()[0][0]
    n_lake = con.sql("select count(*) from trajectories").fetchall()[0][0]
    return {
        "kind": kinds[0] if kinds else "where",
        "where": run_where(run.get("settings")),
        "n_trajectories": n_scope,
        "n_lake": n_lake,
    }


def run_threshold(run: dict) -> float:
    """The semantic threshold the run clustered lessons with (drift matches at the same)."""
    try:
        value = json.loads(run.get("settings") or "{}")["thresholds"]["semantic_threshold"]
        return float(value)
    except (KeyError, TypeError, ValueError):
        return drift_.MATCH_THRESHOLD


def scope_text(scope: dict) -> str:
    """Which runs the figures count, in words (`scope`: what `run_scope` returns)."""
    where = {
        "where": f"its --where {scope.get('where')}",
        "sources": f"the sources it read lessons from (its --where {scope.get('where')} names "
        "lesson columns)",
        "lake": "every run of the lake (no --where)",
    }.get(scope.get("kind"), "")
    return (
        f"runs counted: {scope.get('n_trajectories')} of the lake's {scope.get('n_lake')}, {where}"
    )


def check_skill_folder(statements: pl.DataFrame, skill: str | os.PathLike | None) -> list[str]:
    """Warn when the folder on disk no longer holds the statements the run recorded."""
    if skill is None or not Path(skill).is_dir() or statements.height == 0:
        return []
    root = Path(skill)
    differ, missing = 0, set()
    for file, rows in statements.group_by("file", maintain_order=True):
        path = root / file[0]
        if not path.is_file():
            missing.add(file[0])
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for line_no, text in rows.select("line_no", "text").iter_rows():
            found = lines[line_no - 1].strip() if 0 < line_no <= len(lines) else None
            if found is None or text.strip() not in found:
                differ += 1
    out = []
    if missing:
        out.append(f"{root}: files recorded by the run are missing: {', '.join(sorted(missing))}")
    if differ:
        out.append(
            f"{root}: {differ} of {statements.height} recorded lines differ from the folder "
            "(edited since the run?); coverage describes the run as recorded"
        )
    return out
