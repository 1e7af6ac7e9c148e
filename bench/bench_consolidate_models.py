"""Parallel vs sequential consolidation with a model: calls, tokens and wall time, same lessons.

Synthetic lessons (`pipeline.consolidate.synth`; small: 1,000, full: 5,000) are consolidated
into the demo base skill twice, each time through the real client against the loopback server
(`tests/loopback.py`), which answers after a fixed latency (a stand-in for a model) with the
scripted model of the tests (`tests/consolidate/scripted.py`: summaries from the members shown,
merges that join same-titled inputs and resolve contradictions by their evidence, sequential
edits that join a lesson to the statement it repeats):

- parallel (the Trace2Skill method): one summary per kept cluster, then the merge tree (fan-in
  5), every level's nodes at once, concurrency C;
- sequential (--lessons-per-edit 50): one edit per batch, each seeing the statements so far, one
  after the other.

Beside each: the latency-bound floor (requests one after the other for the sequential mode,
ceil(requests / C) rounds per stage for the parallel one), and a rerun of the parallel mode,
answered from `llm_calls`.

    python -m bench.run --only consolidate_models [--size small]
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import polars as pl

from bench.run import Measurement

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

BASE = ROOT / "data" / "tau-bench-airline" / "base-skill"
SIZES = {"small": 1_000, "full": 5_000}
LATENCY_S = 0.2
CONCURRENCY = 16
BATCH = 50


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _consolidate(lake, settings, out: Path, mode: str) -> tuple[object, float]:
    from pipeline.consolidate.run import consolidate

    started = time.perf_counter()
    s = consolidate(lake, base_skill=BASE, out_dir=out, settings=settings, mode=mode,
                    batch_size=BATCH)  # fmt: skip
    return s, time.perf_counter() - started


def _rounds(lake, run_id: str) -> float:
    """The parallel mode's latency floor: per stage (summaries, then each merge level, each with
    its re-asks), ceil(requests / concurrency) rounds of the latency."""
    calls = lake.read("llm_calls").filter(~pl.col("cache_hit"))
    nodes = lake.read("merge_nodes").filter(pl.col("run_id") == run_id)
    summaries = calls.filter(pl.col("stage") == "summarise").height
    rounds = math.ceil(summaries / CONCURRENCY)
    for _, level in nodes.group_by("level"):
        asked = level.filter(pl.col("model") != "offline")
        rounds += math.ceil(asked.height / CONCURRENCY)
        rounds += math.ceil(asked["repair_call_key"].drop_nulls().len() / CONCURRENCY)
    return rounds * LATENCY_S


def run(size: str, workdir: Path) -> list[Measurement]:
    from loopback import Loopback

    from pipeline.consolidate.synth import write_synthetic
    from pipeline.lake import Lake
    from tests.consolidate import scripted

    n = SIZES[size]
    lake = Lake(workdir / f"lake-models-{n}")
    write_synthetic(lake, n, seed=3)
    with Loopback(latency_s=LATENCY_S, responder=scripted.responder) as server:
        settings = server.settings(concurrency=CONCURRENCY, timeout_s=60.0)
        par, par_s = _consolidate(lake, settings, workdir / "par" / "airline-agent-policy", "parallel")  # fmt: skip
        par_floor = _rounds(lake, par.run_id)
        again, again_s = _consolidate(lake, settings, workdir / "par" / "airline-agent-policy", "parallel")  # fmt: skip
        seq, seq_s = _consolidate(lake, settings, workdir / "seq" / "airline-agent-policy", "sequential")  # fmt: skip
    assert par.lint_ok and seq.lint_ok and again.n_calls == 0
    seq_floor = seq.n_calls * LATENCY_S
    label = f"{n // 1000}k lessons"
    setup = (f"loopback latency {LATENCY_S} s, concurrency {CONCURRENCY}, fan-in 5, "
             f"sequential batch {BATCH}")  # fmt: skip
    details = {
        mode: {"calls": s.n_calls, "tokens_in": s.tokens_in, "tokens_out": s.tokens_out,
               "seconds": secs, "merge_steps": s.n_nodes, "kept_statements": s.n_kept,
               "skill_lines": s.n_skill_lines, "fallbacks": s.n_fallbacks, "omitted": s.n_omitted}
        for mode, s, secs in (("parallel", par, par_s), ("sequential", seq, seq_s))
    }  # fmt: skip
    note = (f"{setup}; parallel: {par.n_calls} calls ({par.n_clusters:,} clusters, {par.n_kept} "
            f"kept, {par.n_nodes} merge nodes), sequential: {seq.n_calls} calls "
            f"({seq.n_nodes} batches); {_load()}")  # fmt: skip
    return [
        Measurement("consolidate_models", f"parallel wall time with a model ({label})", par_s, "s",
                    "sequential, batch 50", seq_s, "", note, details),
        Measurement("consolidate_models", f"parallel model calls ({label})", par.n_calls, "calls",
                    "sequential calls", seq.n_calls, "", setup),
        Measurement("consolidate_models", f"parallel tokens in+out ({label})",
                    par.tokens_in + par.tokens_out, "tokens", "sequential tokens",
                    seq.tokens_in + seq.tokens_out, "",
                    f"in/out: parallel {par.tokens_in:,}/{par.tokens_out:,}, sequential "
                    f"{seq.tokens_in:,}/{seq.tokens_out:,}"),
        Measurement("consolidate_models", f"parallel wall time vs its latency floor ({label})",
                    par_s, "s", "rounds of latency at concurrency C", par_floor, "",
                    "summaries, then each merge level and its re-asks"),
        Measurement("consolidate_models", f"sequential wall time vs its latency floor ({label})",
                    seq_s, "s", "one call after the other", seq_floor, "", ""),
        Measurement("consolidate_models", f"parallel rerun from the cache ({label})", again_s,
                    "s", "first run", par_s, "0 calls",
                    f"{again.cache_hits} cache hits, {again.n_calls} calls"),
    ]  # fmt: skip
