"""The model layer's map against the loopback server (run in its own process).

- Throughput at a fixed server latency of 1 s and concurrency C: requests/s as a fraction of the
  limit C / latency (target >= 0.9).
- Client CPU per call (this process only: the server runs in another), beside the bare
  ``AsyncOpenAI`` client doing the same calls with a semaphore and nothing else.
- Requests/s with an instant server, ours beside the bare client, and a rerun answered from the
  cache.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import openai

from bench.run import Measurement
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm import LLM, ChatRequest
from pipeline.settings import ModelSettings

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 64
SIZES = {"small": (3, 600), "full": (20, 3000)}  # (waves at 1 s, requests at 0 s)


@contextmanager
def server(latency_s: float):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "loopback.py"), "--latency", str(latency_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def requests(n: int, tag: str) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": f"{tag} request {i}"}], stage="bench")
        for i in range(n)
    ]


def ours(url: str, lake: Lake, reqs: list[ChatRequest]) -> tuple[float, float, int]:
    settings = ModelSettings(model="bench", base_url=url, api_key="x", concurrency=CONCURRENCY)
    llm = LLM(settings, lake, Console(0))
    wall, cpu = time.perf_counter(), time.process_time()
    results = llm.map(reqs)
    ok = sum(r.ok for r in results)
    return time.perf_counter() - wall, time.process_time() - cpu, ok


def bare(url: str, reqs: list[ChatRequest]) -> tuple[float, float, int]:
    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(req: ChatRequest) -> bool:
            async with sem:
                out = await client.chat.completions.create(
                    model="bench", messages=req.messages, temperature=0.0
                )
                return out.choices[0].message.content is not None

        done = await asyncio.gather(*(one(r) for r in reqs))
        await client.close()
        return sum(done)

    wall, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(main())
    return time.perf_counter() - wall, time.process_time() - cpu, ok


def run(size: str, workdir: Path) -> list[Measurement]:
    waves, instant_n = SIZES[size]
    out: list[Measurement] = []
    n = waves * CONCURRENCY
    with server(0.0) as url:  # warm up: imports, first lake write, first connections
        ours(url, Lake(workdir / "lake-warm"), requests(CONCURRENCY, "warm"))
        bare(url, requests(CONCURRENCY, "warm"))
    with server(1.0) as url:
        wall, cpu, ok = ours(url, Lake(workdir / "lake-slow"), requests(n, "slow"))
        b_wall, b_cpu, b_ok = bare(url, requests(n, "slow-bare"))
    limit = CONCURRENCY / 1.0
    note = f"{n} requests, concurrency {CONCURRENCY}, server latency 1 s; {ok}/{n} ok"
    out.append(
        Measurement(
            "llm",
            "map throughput at 1 s latency",
            n / wall,
            "req/s",
            "limit C/latency",
            limit,
            ">= 0.9 of the limit",
            note,
            {"bare_client_req_s": n / b_wall},
        )  # fmt: skip
    )
    out.append(
        Measurement(
            "llm",
            "client CPU per call (1 s latency)",
            cpu / n * 1000,
            "ms",
            "bare AsyncOpenAI client",
            b_cpu / n * 1000,
            None,
            "ours includes cache lookup, key digest and the llm_calls log",
        )  # fmt: skip
    )
    with server(0.0) as url:
        lake = Lake(workdir / "lake-fast")
        wall, cpu, ok = ours(url, lake, requests(instant_n, "fast"))
        b_wall, b_cpu, _ = bare(url, requests(instant_n, "fast-bare"))
        hit_wall, _, hits = ours(url, lake, requests(instant_n, "fast"))
    out.append(
        Measurement(
            "llm",
            "map throughput, instant server",
            instant_n / wall,
            "req/s",
            "bare AsyncOpenAI client",
            instant_n / b_wall,
            None,
            f"{instant_n} requests, concurrency {CONCURRENCY}; {ok} ok; the server shares the machine",
        )  # fmt: skip
    )
    out.append(
        Measurement(
            "llm",
            "client CPU per call (instant server)",
            cpu / instant_n * 1000,
            "ms",
            "bare AsyncOpenAI client",
            b_cpu / instant_n * 1000,
            None,
            "",
        )  # fmt: skip
    )
    out.append(
        Measurement(
            "llm",
            "rerun answered from the cache",
            instant_n / hit_wall,
            "req/s",
            None,
            None,
            None,
            f"{hits}/{instant_n} answered, zero server calls",
        )  # fmt: skip
    )
    return out
