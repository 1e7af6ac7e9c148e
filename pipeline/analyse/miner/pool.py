"""Pool-level statistics the miner's rules read: computed once over every run in the lake.

Reads `trajectories` and `steps` through `sql/miner_runs.sql` and `sql/miner_calls.sql`; writes
nothing. Per source it learns, from the data alone:

- tool profiles: calls, runs, error rate; terminal tools (their call ends the run: a final
  answer, a hand-off); shell-like tools (one string argument whose first words name a program);
- where the grader gives gold actions: read-only tools (successful runs call them off the gold
  list, or skip gold calls of them, as often as they follow it: so they cannot change the state
  the grader checks) and write tools (the rest of the gold tools); task families (the set of
  write tools a task's gold list holds), each run's gold diff, and how often each argument went
  wrong across runs;
- shared solution paths: per family, the tools most successful runs call, in their usual order,
  and which tool they all call before a write or final tool;
- recoveries: per (tool signature, error pattern) every strategy tried after the error and how
  often it worked (see `recovery.py`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from pipeline import sql
from pipeline.analyse.miner.answers import classify
from pipeline.analyse.miner.gold import Call, GoldAction, GoldFinding, exact_matches, gold_diff
from pipeline.analyse.miner.paths import FamilyPath, shared_paths
from pipeline.analyse.miner.recovery import aggregate
from pipeline.analyse.miner.text import command_head, main_string, parse_args

NO_GOLD_FAMILY = "all tasks"
NO_WRITE_FAMILY = "no write action"
_PROGRAM = re.compile(r"^[a-z][a-z0-9_.+-]*$")


@dataclass
class MinerThresholds:
    """The miner's cut-offs for pool statistics (not consolidate's `Thresholds`)."""

    terminal_rate: float = 0.8  # share of a tool's calls that end the run
    min_calls: int = 3  # calls before a tool's profile is trusted
    command_distinct: float = 0.35  # distinct programs / calls for a shell-like tool
    path_share: float = 0.6  # share of successful runs that call a tool on the shared path
    precede_share: float = 0.8  # share of successful runs that call A before B
    min_success_runs: int = 3  # successful runs a family needs for path statistics


@dataclass
class Pool:
    thresholds: MinerThresholds
    tools: pl.DataFrame  # one row per (source, tool_name): the profile
    read_only: dict[str, set[str]]
    write_tools: dict[str, set[str]]
    terminal: dict[str, set[str]]
    command_like: dict[str, set[str]]
    has_gold: set[str]
    families: dict[str, str]  # trajectory_id -> family
    paths: dict[tuple[str, str], FamilyPath]
    gold_findings: dict[str, list[GoldFinding]]
    diff_counts: Counter  # (source, tool, kind, arg pattern) -> failed runs
    gold_tool_runs: Counter  # (source, tool) -> runs whose gold list holds the tool
    recoveries: dict[tuple[str, str, str], dict]  # (source, signature, pattern) -> strategy stats
    recovery_runs: dict[tuple[str, str, str], set[str]]
    outcomes: dict[str, str]
    n_runs: Counter  # source -> runs
    n_success: Counter  # source -> successful runs
    flags: Counter  # (source, flag, outcome) -> runs; flags from `run_flags`
    contrasts: Any = None  # rules_contrast.ContrastFacts, set by the miner's prepare

    def flag_counts(self, source: str, flag: str) -> tuple[int, int]:
        """(runs with the flag, of which successful) in a source."""
        ok = self.flags[source, flag, "success"]
        return ok + self.flags[source, flag, "failure"] + self.flags[source, flag, "unknown"], ok

    def best_strategy(self, source: str, signature: str, pattern: str):
        """(strategy, stat) that recovered from this error best across the pool, or None."""
        stats = self.recoveries.get((source, signature, pattern), {})
        # One lucky run is thin evidence: prefer strategies that worked at least twice.
        worked = [(s, st) for s, st in stats.items() if st.worked >= 2]
        worked = worked or [(s, st) for s, st in stats.items() if st.worked]
        if not worked:
            return None
        return max(worked, key=lambda kv: (kv[1].rate, kv[1].n, kv[0].past("")))


def calls_by_run(calls: pl.DataFrame) -> dict[str, list[Call]]:
    """Call objects per trajectory, in step order (arguments parsed from JSON)."""
    out: dict[str, list[Call]] = defaultdict(list)
    cols = ["trajectory_id", "step_idx", "tool_name", "tool_args", "is_error", "error_text"]
    cols.append("result_step_idx")
    for tid, step, tool, args, err, etext, rstep in calls.select(cols).iter_rows():
        out[tid].append(Call(step, tool or "?", parse_args(args), bool(err), etext, rstep))
    return out


def gold_of(gold_json: str | None) -> list[GoldAction] | None:
    if gold_json is None:
        return None
    actions = json.loads(gold_json)
    return [
        GoldAction(i, a["name"], a.get("kwargs", a.get("arguments", a.get("args", {}))))
        for i, a in enumerate(actions)
        if isinstance(a, dict) and a.get("name")
    ]


def _tool_profile(calls: pl.DataFrame, runs: pl.DataFrame, th: MinerThresholds) -> pl.DataFrame:
    heads = calls.select(
        "source",
        "tool_name",
        pl.col("tool_args")
        .map_elements(lambda a: _program(main_string(parse_args(a))), return_dtype=pl.String)
        .alias("program"),
    )
    programs = heads.group_by("source", "tool_name").agg(
        pl.col("program").is_not_null().mean().alias("program_share"),
        pl.col("program").drop_nulls().n_unique().alias("n_programs"),
    )
    return (
        calls.join(runs.select("trajectory_id", "outcome"), on="trajectory_id", how="left")
        .group_by("source", "tool_name")
        .agg(
            pl.len().alias("n_calls"),
            pl.col("trajectory_id").n_unique().alias("n_runs"),
            pl.col("trajectory_id")
            .filter(pl.col("outcome") == "success")
            .n_unique()
            .alias("n_success_runs"),
            pl.col("is_error").sum().alias("n_errors"),
            pl.col("is_final").mean().alias("terminal_rate"),
        )
        .join(programs, on=["source", "tool_name"], how="left")
        .with_columns(
            (pl.col("n_errors") / pl.col("n_calls")).alias("error_rate"),
            (
                (pl.col("terminal_rate") >= th.terminal_rate) & (pl.col("n_calls") >= th.min_calls)
            ).alias("is_terminal"),
            (
                (pl.col("program_share") >= 0.7)
                & (pl.col("n_calls") >= th.min_calls)
                & (pl.col("n_programs") <= th.command_distinct * pl.col("n_calls"))
            ).alias("is_command_like"),
        )
        .sort("source", "tool_name")
    )


def _program(text: str | None) -> str | None:
    """The program a command line runs; None for ids, single words and prose."""
    # A command line has a program and arguments: ids and lone words are not commands.
    if not text or len(text.split()) < 2:
        return None
    head = command_head(text)
    return head if head and _PROGRAM.match(head.split()[0]) else None


def _gold_stats(
    runs: pl.DataFrame, by_run: dict[str, list[Call]]
) -> tuple[dict[str, set[str]], dict[str, set[str]], Counter]:
    """Read-only and write tools per source with gold, learned from the successful runs."""
    matched, deviated, in_gold, gold_tool_runs = Counter(), Counter(), Counter(), Counter()
    called_ok: dict[str, set[str]] = defaultdict(set)
    for tid, source, outcome, gold_json in runs.select(
        "trajectory_id", "source", "outcome", "gold_actions"
    ).iter_rows():
        gold = gold_of(gold_json)
        if gold is None:
            continue
        for name in {g.name for g in gold}:
            gold_tool_runs[source, name] += 1
        for g in gold:
            in_gold[source, g.name] += 1
        if outcome != "success":
            continue
        calls = by_run.get(tid, [])
        hit = exact_matches(calls, gold)
        used = {c.step_idx for c in hit.values()}
        for g in gold:
            (matched if g.pos in hit else deviated)[source, g.name] += 1
        for c in calls:
            if not c.is_error:
                called_ok[source].add(c.tool_name)
                if c.step_idx not in used:
                    deviated[source, c.tool_name] += 1
    read_only: dict[str, set[str]] = defaultdict(set)
    write: dict[str, set[str]] = defaultdict(set)
    for source in {s for s, _ in in_gold} | set(called_ok):
        gold_tools = {t for s, t in in_gold if s == source}
        read_only[source] = {t for t in called_ok[source] if t not in gold_tools}
        for tool in gold_tools:
            m, d = matched[source, tool], deviated[source, tool]
            if m + d >= 3 and d >= m:
                read_only[source].add(tool)
            else:
                write[source].add(tool)
    return dict(read_only), dict(write), gold_tool_runs


def gold_tool_roles(
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(read-only tools, write tools) per source, learned as `build_pool` learns them, without
    the rest of the pool's statistics (the agentic analyst's gold comparison needs only these)."""
    runs = sql.query(con, "miner_runs")
    by_run = calls_by_run(sql.query(con, "miner_calls", result_chars=0))
    read_only, write, _ = _gold_stats(runs, by_run)
    return read_only, write


def _family(gold: list[GoldAction] | None, write: set[str]) -> str:
    if gold is None:
        return NO_GOLD_FAMILY
    tools = sorted({g.name for g in gold if g.name in write})
    return " + ".join(tools) if tools else NO_WRITE_FAMILY


def max_error_streak(calls: list[Call]) -> int:
    """Longest run of consecutive failed calls."""
    best = cur = 0
    for c in calls:
        cur = cur + 1 if c.is_error else 0
        best = max(best, cur)
    return best


def run_flags(
    calls: list[Call],
    terminal: set[str],
    correct: str | None,
    findings: list[GoldFinding] | None,
) -> set[str]:
    """Facts about one run that the pool counts by outcome (so lessons can quote success rates)."""
    flags = set()
    if max_error_streak(calls) >= 3:
        flags.add("error_loop")
    seen = Counter(f"{c.tool_name}|{c.canon}" for c in calls if not c.is_error)
    if seen and max(seen.values()) >= 3:
        flags.add("repeated_call")
    finals = [c for c in calls if c.tool_name in terminal]
    if terminal and not finals:
        flags.add("no_final_call")
    for c in finals:
        flags.add(f"final:{c.tool_name}")
        if findings and any(f.kind in ("missing", "failed") for f in findings):
            flags.add(f"handoff_instead_of_write:{c.tool_name}")
    if correct and finals:
        answer = main_string(finals[-1].args)
        if answer is not None:
            flags.add("answered")
            flags.add(f"answer:{classify(answer, correct) or 'right'}")
    return flags


def build_pool(con: duckdb.DuckDBPyConnection, th: MinerThresholds | None = None) -> Pool:
    """Every statistic above, over all runs the connection's lake holds."""
    th = th or MinerThresholds()
    runs = sql.query(con, "miner_runs")
    calls = sql.query(con, "miner_calls", result_chars=0)
    by_run = calls_by_run(calls)
    tools = _tool_profile(calls, runs, th)
    terminal: dict[str, set[str]] = defaultdict(set)
    command_like: dict[str, set[str]] = defaultdict(set)
    for source, tool, is_term, is_cmd in tools.select(
        "source", "tool_name", "is_terminal", "is_command_like"
    ).iter_rows():
        if is_term:
            terminal[source].add(tool)
        if is_cmd:
            command_like[source].add(tool)
    read_only, write, gold_tool_runs = _gold_stats(runs, by_run)
    families, findings, diff_counts = {}, {}, Counter()
    for tid, source, outcome, gold_json in runs.select(
        "trajectory_id", "source", "outcome", "gold_actions"
    ).iter_rows():
        gold = gold_of(gold_json)
        families[tid] = _family(gold, write.get(source, set()))
        if gold is None:
            continue
        found = gold_diff(
            by_run.get(tid, []), gold, read_only.get(source, set()), write.get(source, set())
        )
        findings[tid] = found
        if outcome == "success":
            continue
        keys = {(source, f.tool, f.kind, d.pattern) for f in found for d in f.diffs}
        keys |= {(source, f.tool, f.kind, "") for f in found}
        diff_counts.update(keys)
    # Tools whose prerequisites matter: writes where a grader names them, else final tools.
    anchors = {s: set(write.get(s, set())) if s in write else set(t) for s, t in terminal.items()}
    anchors |= {s: set(w) for s, w in write.items()}
    paths = shared_paths(by_run, runs, families, anchors, terminal, th)
    recoveries, recovery_runs = aggregate(by_run, runs, command_like, terminal)
    outcomes = dict(runs.select("trajectory_id", "outcome").iter_rows())
    flags: Counter = Counter()
    for tid, source, outcome, correct in runs.select(
        "trajectory_id", "source", "outcome", "correct_answer"
    ).iter_rows():
        found = run_flags(
            by_run.get(tid, []), terminal.get(source, set()), correct, findings.get(tid)
        )
        flags.update((source, f, outcome) for f in found)
    counts = runs.group_by("source").agg(
        pl.len(), (pl.col("outcome") == "success").sum().alias("ok")
    )
    return Pool(
        thresholds=th,
        tools=tools,
        read_only=read_only,
        write_tools=write,
        terminal=dict(terminal),
        command_like=dict(command_like),
        has_gold={s for s, _ in gold_tool_runs},
        families=families,
        paths=paths,
        gold_findings=findings,
        diff_counts=diff_counts,
        gold_tool_runs=gold_tool_runs,
        recoveries={k: dict(v) for k, v in recoveries.items()},
        recovery_runs=dict(recovery_runs),
        outcomes=outcomes,
        n_runs=Counter(dict(counts.select("source", "len").iter_rows())),
        n_success=Counter(dict(counts.select("source", "ok").iter_rows())),
        flags=flags,
    )
