"""`trace2skill analyse --analyst single` as a user runs it, beside a bare client: the whole harness.

The loopback server runs in its own process (it would share our GIL in a thread) and answers
every request after 0.5 s; the single analyst's json_schema requests get a minimal valid answer.
The pool is the demo data copied under new ids (`bench_analyse.build_pool`), N runs taken with
``--limit`` (small: 300, full: 2,000). Measured in the same run, interleaved, best of `ROUNDS`:

- the bare client: one ``AsyncOpenAI`` with a semaphore of C sending N requests whose bodies are
  the analyst's own (same prompts, same ``response_format``), timed from the first request;
- the command: ``trace2skill analyse --analyst single --model M --base-url URL --concurrency C``
  over the same N runs in a fresh copy of the lake, as a subprocess timed from its start
  (interpreter start-up and imports included), which must exit 0 with N analyses written.

Reported: the command's runs/s against the bare client's requests/s (target >= 0.9), and each
against the limit N / C x latency.

Then the same against a real server, where the model is the limit: llama.cpp's ``llama-server``
serving SmolLM2-135M-Instruct (2 slots of 4,096 tokens, as the real-model tests start it) and
8 tau-bench runs. The command runs first; its requests, as it shaped them for the server (read
back from ``llm_calls`` and ``model_endpoints``), are then sent again by a bare client, two at a
time, to a freshly started server (no prompt cached). Reported: completion tokens per second of
the command against the bare client's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from bench.bench_analyse import build_pool
from bench.run import Measurement

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"small": 300, "full": 2000}
ROUNDS = {"small": 2, "full": 3}
CONCURRENCY = 64
LATENCY_S = 0.5
MODEL = "bench-model"


class Server:
    """tests/loopback.py in its own process; `url` once it listens."""

    def __init__(self, latency_s: float):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "loopback.py"), "--latency", str(latency_s)],
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError(f"the loopback server did not start: {self.url!r}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _env() -> dict[str, str]:
    """This checkout's `pipeline` first, whatever is installed."""
    path = os.environ.get("PYTHONPATH")
    return os.environ | {"PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def _command() -> list[str]:
    script = Path(sys.executable).parent / "trace2skill"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli"]


def bodies(lake_dir: Path, n: int, url: str) -> list[dict]:
    """The chat bodies the single analyst sends for the first `n` runs (as the command picks
    them: the selection in trajectory id order, limited to `n`)."""
    from pipeline.analyse.single import SingleAnalyst
    from pipeline.lake import Lake
    from pipeline.llm.types import prepare
    from pipeline.settings import ModelSettings

    lake = Lake(lake_dir)
    settings = ModelSettings(model=MODEL, base_url=url, api_key="x", concurrency=CONCURRENCY)
    analyst = SingleAnalyst(settings)
    trajs = lake.read("trajectories").sort("trajectory_id").head(n)
    steps = lake.scan("steps").filter(pl.col("trajectory_id").is_in(trajs["trajectory_id"]))
    by_run = steps.collect().partition_by("trajectory_id", as_dict=True)
    return [
        prepare(analyst.request(row, by_run[(row["trajectory_id"],)])[0], settings).body
        for row in trajs.iter_rows(named=True)
    ]


def bare(url: str, reqs: list[dict]) -> tuple[float, int]:
    """Wall seconds for `reqs` through a bare AsyncOpenAI client and a semaphore; answers ok."""
    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=120.0)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(body: dict) -> bool:
            async with sem:
                out = await client.chat.completions.create(**body)
                return out.choices[0].message.content is not None

        done = await asyncio.gather(*(one(b) for b in reqs))
        await client.close()
        return sum(done)

    started = time.perf_counter()
    ok = asyncio.run(main())
    return time.perf_counter() - started, ok


def command(url: str, lake_dir: Path, n: int) -> float:
    """Wall seconds of the analyse command from its start; checks it analysed `n` runs."""
    args = [
        *_command(), "-q", "analyse", "--lake", str(lake_dir), "--analyst", "single",
        "--model", MODEL, "--base-url", url, "--api-key", "x",
        "--concurrency", str(CONCURRENCY), "--limit", str(n),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"analyse exited {done.returncode}: {done.stderr[-2000:]}")
    analysed = pl.read_parquet(lake_dir / "analyses" / "*.parquet").filter(pl.col("status") == "ok")
    if analysed.height != n:
        raise RuntimeError(f"analyse wrote {analysed.height} ok analyses, expected {n}")
    return wall


REAL_WHERE = "task_id in ('1', '2')"


def real_server(workdir: Path) -> list[Measurement]:
    """The command against llama-server with SmolLM2, beside a bare client replaying its
    requests (see the module docstring); nothing when the real-model build is missing."""
    import json

    from pipeline.lake import Lake
    from pipeline.llm.endpoint import Endpoint
    from pipeline.llm.probe import load
    from tests.realmodel.servers import LlamaServer, RealModelUnavailable

    demo = ROOT / "data" / "tau-bench-airline" / "gpt-4o-airline.json"
    lake_dir = workdir / "real-lake"
    shutil.rmtree(lake_dir, ignore_errors=True)
    subprocess.run(
        [*_command(), "-q", "ingest", str(demo), "--lake", str(lake_dir)],
        env=_env(), check=True, capture_output=True,
    )  # fmt: skip
    try:
        first = LlamaServer(ctx_per_slot=4096, slots=2)
    except RealModelUnavailable as exc:
        print(f"harness: no real-server figures ({exc})")
        return []
    with first as server:
        args = [
            *_command(), "-q", "analyse", "--lake", str(lake_dir), "--analyst", "single",
            "--model", server.model, "--base-url", server.base_url, "--where", REAL_WHERE,
            "--max-lessons", "1",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(args, env=_env(), capture_output=True, text=True)
        cmd_s = time.perf_counter() - started
        lake = Lake(lake_dir)
        calls = lake.read("llm_calls").filter(pl.col("stage") == "analyse")
        ep = load(lake, server.base_url, server.model) or Endpoint(server.base_url, server.model)
    cmd_tokens = int(calls["tokens_out"].sum())
    replay = []
    for row in calls.iter_rows(named=True):
        body = {"model": ep.model, "messages": json.loads(row["request"])}
        body |= json.loads(row["params"])
        replay.append(ep.shape(body, stream=False)[0])
    with LlamaServer(ctx_per_slot=4096, slots=2) as server:

        async def main() -> int:
            import openai

            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0,
                                        timeout=600.0)  # fmt: skip
            sem = asyncio.Semaphore(2)

            async def one(body: dict) -> int:
                async with sem:
                    out = await client.chat.completions.create(**body)
                    return out.usage.completion_tokens if out.usage else 0

            tokens = sum(await asyncio.gather(*(one(b) for b in replay)))
            await client.close()
            return tokens

        started = time.perf_counter()
        bare_tokens = asyncio.run(main())
        bare_s = time.perf_counter() - started
    details = {
        "runs": 8,
        "requests": len(replay),
        "command_s": cmd_s,
        "command_tokens_out": cmd_tokens,
        "bare_s": bare_s,
        "bare_tokens_out": bare_tokens,
        "mode": ep.mode,
        "command": " ".join(a for a in args[1:] if a != str(lake_dir)),
    }
    return [
        Measurement(
            "harness",
            "analyse --analyst single against llama-server (SmolLM2), start-up included",
            cmd_tokens / cmd_s,
            "tokens/s",
            reference_name="bare AsyncOpenAI, the same requests, 2 at a time",
            reference_value=bare_tokens / bare_s,
            target=">= 0.9 of the bare client",
            notes=f"8 tau-bench runs, {len(replay)} requests, 2 slots x 4,096 tokens; command "
            f"{cmd_s:.0f}s for {cmd_tokens:,} tokens out, bare {bare_s:.0f}s for "
            f"{bare_tokens:,}",
            details=details,
        )
    ]


def run(size: str, workdir: Path) -> list[Measurement]:
    n = SIZES[size]
    build_pool(workdir / "pool", n)
    pristine = workdir / "pool" / "lake"
    server = Server(LATENCY_S)
    try:
        reqs = bodies(pristine, n, server.url)
        bare(server.url, reqs[:CONCURRENCY])  # warm up: first connections, the server's threads
        bare_s, cmd_s = [], []
        for k in range(ROUNDS[size]):
            wall, ok = bare(server.url, reqs)
            assert ok == n, f"bare client: {ok}/{n} answers"
            bare_s.append(wall)
            lake_dir = workdir / f"lake-{k}"
            shutil.rmtree(lake_dir, ignore_errors=True)
            shutil.copytree(pristine, lake_dir)
            cmd_s.append(command(server.url, lake_dir, n))
            shutil.rmtree(lake_dir, ignore_errors=True)
    finally:
        server.close()
    limit_s = n / CONCURRENCY * LATENCY_S
    best_bare, best_cmd = min(bare_s), min(cmd_s)
    body_kb = sum(len(str(r["messages"])) for r in reqs) / n / 1024
    details = {
        "runs": n,
        "concurrency": CONCURRENCY,
        "latency_s": LATENCY_S,
        "limit_s": limit_s,
        "bare_s": bare_s,
        "command_s": cmd_s,
        "command": f"trace2skill analyse --analyst single --model {MODEL} --base-url URL "
        f"--concurrency {CONCURRENCY} --limit {n}",
    }
    rounds = ", ".join(f"{c:.1f}/{b:.1f}" for c, b in zip(cmd_s, bare_s, strict=True))
    return real_server(workdir) + [
        Measurement(
            "harness",
            "analyse --analyst single, start-up included, vs the bare client",
            n / best_cmd,
            "runs/s",
            reference_name="bare AsyncOpenAI + semaphore, same bodies, req/s",
            reference_value=n / best_bare,
            target=">= 0.9 of the bare client",
            notes=f"{n:,} runs, loopback in its own process at {LATENCY_S}s, concurrency "
            f"{CONCURRENCY}, ~{body_kb:.0f} KB of messages per request; best of {len(cmd_s)} "
            f"(command/bare s per round: {rounds})",
            details=details,
        ),
        Measurement(
            "harness",
            "analyse --analyst single, start-up included, vs the limit",
            n / best_cmd,
            "runs/s",
            reference_name="limit C / latency",
            reference_value=n / limit_s,
            target=">= 0.9 of the limit",
            notes=f"limit {limit_s:.2f}s for {n:,} requests; best command run {best_cmd:.2f}s",
            details=details,
        ),
        Measurement(
            "harness",
            "bare client vs the limit",
            n / best_bare,
            "req/s",
            reference_name="limit C / latency",
            reference_value=n / limit_s,
            notes=f"best bare run {best_bare:.2f}s",
            details=details,
        ),
    ]
