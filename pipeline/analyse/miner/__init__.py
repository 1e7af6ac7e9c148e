"""The offline analyst: a deterministic trajectory miner (no model, no network).

`MinerAnalyst.prepare` computes the pool statistics over every run in the lake (`pool.py`);
`analyse_batch` reads each trajectory's calls and messages and runs the rules of
`rules_grader.py` (gold actions, expected outputs, final answers) and `rules_flow.py` (errors and
recoveries, loops, missing final calls and prerequisites, shared solution paths). A lesson's
target section is a heading of the base skill when one is given and the lesson's words match it,
else a name derived from its tool.

What it does not do: read intent from free text (why the agent chose something), judge policy
compliance the data does not show, or phrase lessons beyond its templates. Its lessons quote
actual values and pool counts, so consolidation can count and merge them like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql
from pipeline.analyse.analyst import (
    AnalysisResult,
    AnalysisUsage,
    BaseAnalyst,
    Batch,
    LessonDraft,
    error_reason,
    now,
)
from pipeline.analyse.miner.context import RunContext, batch_parts, build_context
from pipeline.analyse.miner.pool import MinerThresholds, Pool, build_pool
from pipeline.analyse.miner.rules_contrast import contrast_rule, load_facts
from pipeline.analyse.miner.rules_flow import final_call_rule, loop_rules, path_rules, recovery_rule
from pipeline.analyse.miner.rules_grader import answer_rule, gold_rules, handoff_rule, outputs_rule
from pipeline.analyse.sections import SectionMatcher
from pipeline.lake import Lake

RULES_VERSION = "miner-2"
RESULT_CHARS = 4000  # leading characters of each tool result the rules read

# Causes first: when a run yields more than the cap, the ones that explain the failure stay.
RULES: list[Callable[[RunContext], list[LessonDraft]]] = [
    gold_rules,
    handoff_rule,
    outputs_rule,
    answer_rule,
    contrast_rule,
    final_call_rule,
    recovery_rule,
    loop_rules,
    path_rules,
]


class MinerAnalyst(BaseAnalyst):
    name = "miner"
    model = "offline"
    prompt_version = RULES_VERSION
    cpu_bound = True  # the map may spread its batches over processes
    option_names = tuple(MinerThresholds.__dataclass_fields__)

    def __init__(self, options: dict[str, Any] | None = None, base_skill: str | Path | None = None):
        settings = {k: v for k, v in (options or {}).items() if k != "batch_size"}
        settings.setdefault("max_lessons", 10)
        if base_skill is not None:
            # The skill's text decides target sections, so it is part of the configuration.
            from pipeline.analyse.sections import skill_file

            settings["base_skill_text"] = skill_file(base_skill).read_text(encoding="utf-8")
        super().__init__(settings)
        self.matcher = SectionMatcher.from_skill(base_skill) if base_skill else None
        self.thresholds = MinerThresholds(
            **{k: v for k, v in settings.items() if k in MinerThresholds.__dataclass_fields__}
        )
        self.pool: Pool | None = None
        self.runs: dict[str, dict] = {}

    def prepare(self, lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
        self.pool = build_pool(con, self.thresholds)
        self.pool.contrasts = load_facts(con)
        self.runs = {
            r["trajectory_id"]: r for r in sql.query(con, "miner_runs").iter_rows(named=True)
        }

    def analyse_batch(self, batch: Batch) -> list[AnalysisResult]:
        if self.pool is None:
            raise RuntimeError("MinerAnalyst.prepare must run before analyse_batch")
        con = duckdb.connect(":memory:")
        con.register("steps", batch.steps)
        calls = sql.query(con, "miner_calls", result_chars=RESULT_CHARS)
        con.close()
        calls_of, results_of, messages_of = batch_parts(calls, batch.steps)
        outcomes = []
        for row in batch.trajectories.sort("trajectory_id").iter_rows(named=True):
            tid = row["trajectory_id"]
            started = now()
            try:
                ctx = build_context(
                    row,
                    calls_of.get(tid, []),
                    results_of.get(tid, {}),
                    messages_of.get(tid, []),
                    self.runs.get(tid),
                    self.pool,
                    self.matcher,
                )
                lessons = self.lessons_for(ctx)
                outcomes.append(AnalysisResult(tid, lessons, AnalysisUsage(), None, started, now()))
            except Exception as exc:  # one bad trajectory becomes an error row, the batch goes on
                outcomes.append(
                    AnalysisResult(tid, [], AnalysisUsage(), error_reason(exc), started, now())
                )
        return outcomes

    def lessons_for(self, ctx: RunContext) -> list[LessonDraft]:
        out: list[LessonDraft] = []
        seen: set[tuple[str, str]] = set()
        for rule in RULES:
            for lesson in rule(ctx):
                key = (lesson.title, lesson.content)
                if key not in seen:
                    seen.add(key)
                    out.append(lesson)
        return out[: int(self.settings["max_lessons"])]


__all__ = ["MinerAnalyst", "RULES_VERSION"]
