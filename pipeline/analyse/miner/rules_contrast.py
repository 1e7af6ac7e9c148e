"""The rule on what successful runs do differently: the source's contrast findings, per run.

Reads the `contrasts` table analyse wrote before its map (`pipeline/analyse/behaviour`) and each
run's features. A behaviour that goes with success gives a success lesson to the runs that showed
it and a failure lesson to the failed runs that did not; one that goes with failure gives a
failure lesson to the failed runs that showed it. The lesson's text is the same for every run of
a finding (the figures of the source), so consolidation counts it once per run; the evidence is
the run's own step that shows the behaviour, or where it was missing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import polars as pl

from pipeline import sql
from pipeline.analyse.analyst import LessonDraft

MAX_PER_RUN = 3  # the strongest findings a run's lessons cite
SECTION = "What successful runs do differently"  # without a base skill section that fits


@dataclass
class ContrastFacts:
    findings: dict[str, list[dict]] = field(default_factory=dict)  # source -> contrasts rows
    tested: dict[str, int] = field(default_factory=dict)  # source -> features tested
    runs: dict[str, dict[str, tuple[bool, int | None]]] = field(default_factory=dict)


def load_facts(con: duckdb.DuckDBPyConnection) -> ContrastFacts:
    contrasts = con.sql("select * from contrasts").pl()
    found = contrasts.filter(pl.col("is_finding"))
    facts = ContrastFacts(tested=dict(contrasts.group_by("source").len().iter_rows()))
    if not found.height:
        return facts
    effect = pl.when(pl.col("estimate") == "within_task").then("within_diff").otherwise("diff")
    found = found.with_columns(effect.alias("effect")).sort(
        pl.col("effect").abs(), "feature", descending=[True, False]
    )
    for row in found.iter_rows(named=True):
        facts.findings.setdefault(row["source"], []).append(row)
    features = sql.query(con, "behaviour_run_features").join(
        found.select("source", "feature"), on=["source", "feature"], how="semi"
    )
    runs: dict[str, dict[str, tuple[bool, int | None]]] = defaultdict(dict)
    for tid, feature, has, step in features.select(
        "trajectory_id", "feature", "has_feature", "step_idx"
    ).iter_rows():
        runs[tid][feature] = (has, step)
    facts.runs = dict(runs)
    return facts


def contrast_rule(ctx) -> list[LessonDraft]:
    facts: ContrastFacts | None = ctx.pool.contrasts
    if facts is None or ctx.outcome not in ("success", "failure"):
        return []
    mine = facts.runs.get(ctx.tid, {})
    out = []
    for row in facts.findings.get(ctx.source, []):
        if ctx.tid not in facts.runs or row["feature"] not in mine:
            continue  # the feature does not apply to this run
        has, step = mine[row["feature"]]
        helps = row["effect"] > 0
        if helps and has and not ctx.failed:
            kind = "success_lesson"
        elif helps and not has and ctx.failed:
            kind = "failure_lesson"
        elif not helps and has and ctx.failed:
            kind = "failure_cause"
        else:
            continue
        out.append(_lesson(ctx, row, kind, step, facts.tested.get(ctx.source, 0)))
        if len(out) == MAX_PER_RUN:
            break
    return out


def _lesson(ctx, row: dict, kind: str, step: int | None, n_tested: int) -> LessonDraft:
    phrase, helps = row["phrase"], row["effect"] > 0
    rates = f"{row['rate_with']:.0%} against {row['rate_without']:.0%}"
    title = (
        f"Runs that {phrase} succeeded more often ({rates})"
        if helps
        else f"Runs that {phrase} succeeded less often ({rates})"
    )
    pts = 100
    content = (
        f"Runs that {phrase} succeeded in {row['rate_with']:.0%} of cases ({row['n_with']} runs) "
        f"against {row['rate_without']:.0%} ({row['n_without']} runs) that did not: "
        f"{row['diff'] * pts:+.0f} points (95% interval {row['ci_low'] * pts:+.0f} to "
        f"{row['ci_high'] * pts:+.0f})"
    )
    if row["estimate"] == "within_task":
        content += (
            f"; within the same tasks ({row['n_tasks']} tasks with runs both ways) "
            f"{row['within_diff'] * pts:+.0f} points ({row['within_ci_low'] * pts:+.0f} to "
            f"{row['within_ci_high'] * pts:+.0f})"
        )
    content += (
        f". {n_tested} behaviours were compared in these runs; adjusted for all of them "
        f"(Benjamini-Hochberg) this difference has q = {row['q_value']:.2g}, within the "
        f"false-discovery rate of {row['fdr']:g}."
    )
    return ctx.lesson(
        kind=kind,
        rule="contrast",
        tool_name=None,
        title=title,
        description="runs of this source" if helps else f"runs that {phrase}",
        content=content,
        evidence_steps=[step] if step is not None else ctx.last_steps(1),
        confidence=min(0.9, 0.5 + abs(row["effect"])),
        target_section=ctx.section(None, phrase, fallback=SECTION),
    )
