"""Shared solution paths: what the successful runs of a task family have in common.

Per (source, family) with enough successful runs: the tools most of them call, ordered by where
they first appear, the median number of calls in successful and failed runs, the terminal tools
they end with, and for each write (or final) tool the tools nearly all of them call before it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

import polars as pl

from pipeline.analyse.miner.gold import Call

if TYPE_CHECKING:
    from pipeline.analyse.miner.pool import MinerThresholds


@dataclass
class FamilyPath:
    source: str
    family: str
    n_success: int
    n_runs: int
    path: list[str]
    shares: dict[str, float]
    median_calls_success: float
    median_calls_failure: float | None
    before: dict[str, list[tuple[str, float]]]  # write/final tool -> [(tool called before, share)]
    final_tools: dict[str, float]  # terminal tool -> share of successful runs ending with it


def shared_paths(
    by_run: dict[str, list[Call]],
    runs: pl.DataFrame,
    families: dict[str, str],
    anchors: dict[str, set[str]],
    terminal: dict[str, set[str]],
    th: MinerThresholds,
) -> dict[tuple[str, str], FamilyPath]:
    """Shared solution path per (source, family) from its successful runs."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for tid, source, outcome in runs.select("trajectory_id", "source", "outcome").iter_rows():
        groups[source, families[tid]].append((tid, outcome))
    out = {}
    for (source, family), members in groups.items():
        wins = [tid for tid, outcome in members if outcome == "success"]
        if len(wins) < th.min_success_runs:
            continue
        firsts: dict[str, list[float]] = defaultdict(list)
        for tid in wins:
            seq = [c.tool_name for c in by_run.get(tid, []) if not c.is_error]
            for tool in dict.fromkeys(seq):
                firsts[tool].append(seq.index(tool) / max(len(seq), 1))
        shares = {t: len(v) / len(wins) for t, v in firsts.items()}
        path = sorted(
            (t for t, s in shares.items() if s >= th.path_share), key=lambda t: median(firsts[t])
        )
        before = precedence(
            by_run, wins, anchors.get(source, set()) | terminal.get(source, set()), th
        )
        finals = Counter(
            by_run[tid][-1].tool_name
            for tid in wins
            if by_run.get(tid) and by_run[tid][-1].tool_name in terminal.get(source, set())
        )
        fails = [len(by_run.get(tid, [])) for tid, o in members if o != "success"]
        out[source, family] = FamilyPath(
            source,
            family,
            len(wins),
            len(members),
            path,
            shares,
            median(len(by_run.get(tid, [])) for tid in wins),
            median(fails) if fails else None,
            before,
            {t: n / len(wins) for t, n in finals.items()},
        )
    return out


def precedence(
    by_run: dict[str, list[Call]], wins: list[str], anchors: set[str], th: MinerThresholds
) -> dict[str, list[tuple[str, float]]]:
    """For each anchor (write or final tool): tools that nearly all winning runs call first."""
    out = {}
    for anchor in sorted(anchors):
        seen = [tid for tid in wins if any(c.tool_name == anchor for c in by_run.get(tid, []))]
        if len(seen) < th.min_success_runs:
            continue
        counts: Counter = Counter()
        for tid in seen:
            calls = by_run[tid]
            first = next(i for i, c in enumerate(calls) if c.tool_name == anchor)
            counts.update({c.tool_name for c in calls[:first] if not c.is_error} - {anchor})
        ranked = [
            (t, n / len(seen)) for t, n in counts.most_common() if n / len(seen) >= th.precede_share
        ]
        if ranked:
            out[anchor] = ranked
    return out
