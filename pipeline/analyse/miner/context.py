"""What a rule sees of one run: its calls and messages, the grader's view, the pool, the skill.

Built by the miner for each trajectory of a batch; rules read it and return `LessonDraft`s.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipeline.analyse.analyst import LessonDraft
from pipeline.analyse.miner.gold import Call, GoldAction, GoldFinding, gold_diff
from pipeline.analyse.miner.pool import NO_GOLD_FAMILY, Pool, calls_by_run, gold_of
from pipeline.analyse.redact import redact
from pipeline.analyse.sections import SectionMatcher, derived_section, words


@dataclass
class RunContext:
    trajectory: dict[str, Any]
    calls: list[Call]
    results: dict[int, str]  # call step_idx -> result text (leading part)
    messages: list[tuple[int, str, str]]  # (step_idx, role, content) of message steps
    pool: Pool
    matcher: SectionMatcher | None
    gold: list[GoldAction] | None = None
    correct_answer: str | None = None
    expected_outputs: list[str] = field(default_factory=list)
    findings: list[GoldFinding] = field(default_factory=list)

    @property
    def tid(self) -> str:
        return self.trajectory["trajectory_id"]

    @property
    def source(self) -> str:
        return self.trajectory["source"]

    @property
    def outcome(self) -> str:
        return self.trajectory["outcome"]

    @property
    def failed(self) -> bool:
        return self.outcome == "failure"

    @property
    def family(self) -> str:
        return self.pool.families.get(self.tid, NO_GOLD_FAMILY)

    @property
    def terminal(self) -> set[str]:
        return self.pool.terminal.get(self.source, set())

    def family_label(self) -> str:
        return "" if self.family == NO_GOLD_FAMILY else f"{self.family} "

    def section(self, tool: str | None, *context: str | None, fallback: str = "General") -> str:
        """The base skill's section for a lesson about `tool`, else a name derived from it."""
        if self.matcher is not None:
            extra = [w for text in context for w in words(text)]
            hit = self.matcher.match(words(tool), extra)
            if hit:
                return hit
        return derived_section(tool, fallback)

    def last_steps(self, n: int = 2) -> list[int]:
        """Steps of the run's last `n` tool calls (with results), or its last message."""
        tail = self.calls[-n:]
        if tail:
            return sorted({s for c in tail for s in c.steps})
        return [self.messages[-1][0]] if self.messages else []

    def lesson(self, **fields) -> LessonDraft:
        """A draft with redacted text and sorted, de-duplicated evidence."""
        fields["title"] = redact(fields["title"]).strip()
        fields["content"] = redact(fields["content"]).strip()
        fields["evidence_steps"] = sorted({int(s) for s in fields.get("evidence_steps", [])})
        fields["confidence"] = round(min(max(float(fields.get("confidence", 0.5)), 0.0), 1.0), 3)
        return LessonDraft(**fields)


def batch_parts(
    calls: pl.DataFrame, steps: pl.DataFrame
) -> tuple[dict[str, list[Call]], dict[str, dict[int, str]], dict[str, list[tuple[int, str, str]]]]:
    """Calls, results and messages of every run of a batch, split by run in one pass each."""
    by_run = calls_by_run(calls)
    results: dict[str, dict[int, str]] = defaultdict(dict)
    for tid, step, text in calls.select("trajectory_id", "step_idx", "result_text").iter_rows():
        results[tid][step] = text or ""
    messages: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for tid, step, role, content in (
        steps.filter(pl.col("kind") == "message")
        .select("trajectory_id", "step_idx", "role", "content")
        .sort("trajectory_id", "step_idx")
        .iter_rows()
    ):
        messages[tid].append((step, role, content or ""))
    return by_run, results, messages


def build_context(
    row: dict[str, Any],
    calls: list[Call],
    results: dict[int, str],
    messages: list[tuple[int, str, str]],
    run_info: dict[str, Any] | None,
    pool: Pool,
    matcher: SectionMatcher | None,
) -> RunContext:
    """A run's context from its calls, results and messages (`batch_parts`) and miner_runs row."""
    info = run_info or {}
    outputs = json.loads(info["expected_outputs"]) if info.get("expected_outputs") else []
    gold = gold_of(info.get("gold_actions"))
    findings = pool.gold_findings.get(row["trajectory_id"])
    if findings is None and gold is not None:
        source = row["source"]
        findings = gold_diff(
            calls, gold, pool.read_only.get(source, set()), pool.write_tools.get(source, set())
        )
    return RunContext(
        trajectory=row,
        calls=calls,
        results=results,
        messages=messages,
        pool=pool,
        matcher=matcher,
        gold=gold,
        correct_answer=info.get("correct_answer"),
        expected_outputs=[str(o) for o in outputs],
        findings=findings or [],
    )
