"""The model analysts' map against the loopback server: what the analyst adds to the model layer.

The pool is the demo data (tau-bench airline + HotPotQA ReAct, ingested for real), copied under
new ids up to the target size (small: ~600 runs, full: ~3,000). The loopback server answers after
a fixed latency (a stand-in for a model) with concurrency C. Measured in the same run:

- `single`: trajectories/s end to end (render, prompt, structured call, checks, lake writes),
  beside the same request bodies replayed through `LLM.amap` alone;
- `agentic`: trajectories/s of a scripted three-turn conversation (read_steps, search_run, the
  answer), then the same with a query_pool count over the whole pool in every run, beside the
  limit C / (3 x latency);
- a rerun with everything done (no request at all), and the CPU time to build one run's request.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import polars as pl

from bench.bench_analyse import build_pool
from bench.run import Measurement
from pipeline.analyse.lakeview import LakeView
from pipeline.analyse.run import analyse
from pipeline.analyse.single import SingleAnalyst
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm import LLM, ChatRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

SIZES = {"small": 600, "full": 3_000}
CONCURRENCY = 32
LATENCY_S = 0.25
COUNT = "select count(*) from tool_calls where is_error and tool_name = 'book_reservation'"


def _agentic_turn(body: dict, pool: bool = True) -> dict:
    """Turn 1: read_steps (and a query_pool count over the whole pool); turn 2: search_run;
    turn 3: the answer."""
    from tests.analyse.scripted import answer, lesson

    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if turn == 0:
        calls = [{"name": "read_steps", "arguments": {"start": 0, "end": 5}}]
        if pool:
            calls.append({"name": "query_pool", "arguments": {"sql": COUNT}})
        return {"tool_calls": calls}
    if turn == 1:
        return {"tool_calls": [{"name": "search_run", "arguments": {"pattern": "error"}}]}
    return answer(body, [lesson([0])])


def run(size: str, workdir: Path) -> list[Measurement]:
    from loopback import Loopback

    from tests.analyse.scripted import answer, lesson

    lake = build_pool(workdir, SIZES[size])
    n = lake.scan("trajectories").select(pl.len()).collect().item()
    console = Console(0)
    with Loopback(latency_s=LATENCY_S) as server:
        settings = server.settings(concurrency=CONCURRENCY, timeout_s=30.0)
        server.responder = lambda body: answer(body, [lesson([0])])
        t0 = time.perf_counter()
        single = analyse(lake, analyst="single", settings=settings, console=console)
        single_s = time.perf_counter() - t0
        assert single.n_failed == 0, single.errors
        bodies = list(server.chat_requests)

        t0 = time.perf_counter()
        again = analyse(lake, analyst="single", settings=settings, console=console)
        rerun_s = time.perf_counter() - t0
        assert again.n_analysed == 0 and len(server.chat_requests) == len(bodies)

        replay = LLM(settings, Lake(workdir / "replay"), console)
        reqs = [ChatRequest(messages=b["messages"], stage="bench") for b in bodies]
        t0 = time.perf_counter()
        asyncio.run(replay.amap(reqs))
        replay_s = time.perf_counter() - t0

        server.responder = lambda body: _agentic_turn(body, pool=False)
        server.reset()
        t0 = time.perf_counter()
        local = analyse(lake, analyst="agentic", settings=settings, console=console)
        local_s = time.perf_counter() - t0
        assert local.n_failed == 0, local.errors

        server.responder = _agentic_turn
        server.reset()
        pool_lake = Lake(workdir / "lake")  # the same runs, a new configuration: all redone
        t0 = time.perf_counter()
        agentic = analyse(
            pool_lake, analyst="agentic", settings=settings, options={"max_turns": 4},
            console=console,
        )  # fmt: skip
        agentic_s = time.perf_counter() - t0
        assert agentic.n_failed == 0 and agentic.n_analysed == n, agentic.errors
        agentic_calls = len(server.chat_requests)

    view = LakeView(lake)
    t0 = time.perf_counter()
    for _ in range(20):
        view.query(COUNT)
    query_ms = (time.perf_counter() - t0) * 1000 / 20
    view.close()

    analyst = SingleAnalyst(settings)
    traj = lake.read("trajectories").sort("trajectory_id").head(500)
    steps = lake.scan("steps").filter(pl.col("trajectory_id").is_in(traj["trajectory_id"]))
    by_run = steps.collect().partition_by("trajectory_id", as_dict=True)
    cpu = time.process_time()
    for row in traj.iter_rows(named=True):
        analyst.request(row, by_run[(row["trajectory_id"],)])[0]
    build_ms = (time.process_time() - cpu) * 1000 / traj.height

    limit = CONCURRENCY / LATENCY_S
    details = {"trajectories": n, "concurrency": CONCURRENCY, "latency_s": LATENCY_S}
    return [
        Measurement(
            "analyse_models",
            "single: trajectories per second",
            n / single_s,
            "trajectories/s",
            reference_name="the same requests through LLM.amap alone",
            reference_value=n / replay_s,
            target=">= 0.9 of the reference",
            notes=f"{n:,} runs, loopback latency {LATENCY_S}s, concurrency {CONCURRENCY} "
            f"(limit {limit:.0f}/s); {single.usage.tokens_in:,} prompt tokens",
            details=details | {"seconds": single_s, "replay_seconds": replay_s},
        ),
        Measurement(
            "analyse_models",
            "agentic: trajectories per second (tools over the run)",
            n / local_s,
            "trajectories/s",
            reference_name="limit: concurrency / (3 turns x latency)",
            reference_value=limit / 3,
            notes="3 turns per run: read_steps, search_run, the answer",
            details=details | {"seconds": local_s},
        ),
        Measurement(
            "analyse_models",
            "agentic: trajectories per second (plus a query_pool per run)",
            n / agentic_s,
            "trajectories/s",
            reference_name="limit: concurrency / (3 turns x latency)",
            reference_value=limit / 3,
            notes=f"as above plus one query_pool join over all {n:,} runs per run "
            f"({query_ms:.0f} ms alone; {agentic_calls:,} model calls)",
            details=details | {"seconds": agentic_s, "query_ms": query_ms},
        ),
        Measurement(
            "analyse_models",
            "rerun with everything done",
            rerun_s,
            "s",
            reference_name="first single run",
            reference_value=single_s,
            target="no request; a small fraction of the first run",
            details=details,
        ),
        Measurement(
            "analyse_models",
            "CPU to build one run's request (render, redact, prompt)",
            build_ms,
            "ms",
            notes=f"mean over {traj.height} demo runs, render budget 8,000 tokens",
            details=details,
        ),
    ]
