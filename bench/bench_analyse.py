"""The analyse map with the offline miner: trajectories per second on a large pool.

The pool is the demo data (tau-bench airline + HotPotQA ReAct, ingested for real) copied under
new trajectory ids until it holds the target number of runs (small: ~5k, full: ~50k). Measured in
the same run: the miner's map end to end (pool statistics, rules, writing lessons and analyses),
a rerun that finds everything done, and as the reference a plain DuckDB pass that reads every
step and groups it by trajectory (the least any analysis of the steps has to do).

The behaviour contrasts analyse derives before its map are measured on their own, on synthetic
coding runs (`synth --family swebench`: shell commands with heredocs, chains and pipes): the
command parser's throughput against reading the same calls, and measuring the contrasts.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path

import polars as pl

from bench.run import Measurement
from pipeline import sql
from pipeline.analyse.behaviour import measure
from pipeline.analyse.behaviour.actions import update_actions
from pipeline.analyse.run import analyse
from pipeline.ingest.run import ingest_paths
from pipeline.ingest.synth import write_synthetic
from pipeline.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
DEMO = [
    ROOT / "data" / "tau-bench-airline" / "gpt-4o-airline.json",
    ROOT / "data" / "reflexion-hotpotqa" / "100_questions_5_trials.txt",
]
SIZES = {"small": 5_000, "full": 50_000}
CODING_SIZES = {"small": 2_000, "full": 20_000}


def build_pool(workdir: Path, n_target: int) -> Lake:
    seed = Lake(workdir / "seed")
    ingest_paths(seed, DEMO)
    trajs, steps = seed.read("trajectories"), seed.read("steps")
    copies = max(1, round(n_target / trajs.height))
    lake = Lake(workdir / "lake")
    for source in trajs.get_column("source").unique().sort().to_list():
        t = trajs.filter(pl.col("source") == source)
        s = steps.filter(pl.col("source") == source)
        for k in range(copies):
            suffix = pl.lit(f"-{k:04d}")
            lake.write_part(
                "trajectories",
                t.with_columns(pl.col("trajectory_id") + suffix),
                part=f"copy{k:04d}",
                partition={"source": source},
                validate=False,
            )
            lake.write_part(
                "steps",
                s.with_columns(pl.col("trajectory_id") + suffix),
                part=f"copy{k:04d}",
                partition={"source": source},
                validate=False,
            )
    return lake


def _cpu() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run(size: str, workdir: Path) -> list[Measurement]:
    lake = build_pool(workdir, SIZES[size])
    n = lake.scan("trajectories").select(pl.len()).collect().item()
    n_steps = lake.scan("steps").select(pl.len()).collect().item()

    started = time.perf_counter()
    con = sql.connect(lake)
    con.sql(
        "select trajectory_id, count(*), sum(content_chars), bool_or(is_error) from steps group by 1"
    ).fetchall()
    scan_s = time.perf_counter() - started

    started = time.perf_counter()
    cpu0 = _cpu()
    summary = analyse(lake, batch_size=500)
    map_s = time.perf_counter() - started
    map_cpu = _cpu() - cpu0
    assert summary.n_analysed == n and summary.n_failed == 0, summary.errors

    started = time.perf_counter()
    again = analyse(lake)
    rerun_s = time.perf_counter() - started
    assert again.n_analysed == 0

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    details = {"trajectories": n, "steps": n_steps, "lessons": summary.n_lessons}
    return [
        Measurement(
            "analyse",
            "miner map throughput",
            n / map_s,
            "trajectories/s",
            reference_name="DuckDB scan + group of all steps, trajectories/s",
            reference_value=n / scan_s,
            notes=f"{n:,} trajectories, {n_steps:,} steps, {summary.n_lessons:,} lessons in {map_s:.1f}s "
            f"({os.cpu_count()} cores; worker processes on by default at this size)",
            details=details,
        ),
        Measurement(
            "analyse",
            "miner map CPU time per 1,000 trajectories",
            1000 * map_cpu / n,
            "CPU s",
            notes="user + system CPU of the process and its workers: independent of other load",
            details=details,
        ),
        Measurement(
            "analyse",
            "miner lessons written",
            summary.n_lessons / map_s,
            "lessons/s",
            notes="lessons and analyses parts written as the map goes",
            details=details,
        ),
        Measurement(
            "analyse",
            "rerun with everything done",
            rerun_s,
            "s",
            reference_name="first run",
            reference_value=map_s,
            target="a small fraction of the first run",
            details=details,
        ),
        Measurement("analyse", "peak memory (RSS)", peak_mb, "MB", details=details),
        *behaviour(size, workdir),
    ]


def behaviour(size: str, workdir: Path) -> list[Measurement]:
    n_runs = CODING_SIZES[size]
    raw = workdir / "coding-raw"
    for old in (raw, workdir / "coding-lake"):
        shutil.rmtree(old, ignore_errors=True)
    write_synthetic(raw, n_runs, format="openai-chat", seed=3, family="swebench")
    lake = Lake(workdir / "coding-lake")
    ingest_paths(lake, [raw], source="swebench")
    con = sql.connect(lake)
    started = time.perf_counter()
    n_calls = con.sql("select count(*) from steps where kind = 'tool_call'").fetchall()[0][0]
    con.sql(
        "select trajectory_id, step_idx, tool_name, tool_args from steps where kind = 'tool_call'"
    ).fetchall()
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    n_actions = update_actions(lake, con)
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    found = measure(con)
    measure_s = time.perf_counter() - started
    con.close()
    details = {"runs": n_runs, "calls": n_calls, "actions": n_actions}
    return [
        Measurement(
            "analyse",
            "behaviour: shell calls parsed into actions and written",
            n_calls / parse_s,
            "calls/s",
            reference_name="reading the same calls from the lake, calls/s",
            reference_value=n_calls / read_s,
            notes=f"{n_runs:,} synthetic coding runs, {n_calls:,} calls, {n_actions:,} actions "
            f"in {parse_s:.1f}s (one process; identical commands parsed once)",
            details=details,
        ),
        Measurement(
            "analyse",
            "behaviour: contrasts measured (features, counts, tests)",
            measure_s,
            "s",
            notes=f"{found.contrasts.height} features compared over {n_runs:,} runs, "
            f"{found.contrasts.filter(pl.col('is_finding')).height} findings",
            details=details,
        ),
    ]
