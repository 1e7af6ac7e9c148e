"""Ingest throughput: MB/s of raw input into the lake, beside DuckDB's read_json of the same files.

A synthetic OpenAI chat JSONL source (``trace2skill synth``: booking and coding runs with tool
calls and errors) of about 20 MB ("small") or 500 MB ("full") is written, then:

- ``ingest``: ``ingest_paths`` into a fresh lake (detect, parse, link calls to results, hash ids,
  validate, write Parquet), with every core;
- reference: DuckDB ``read_json`` materialising the same files as a table (parse and columnar
  storage only: no steps, ids or validation), with every core;
- ``ingest, one process``: the same with ``jobs=1``, to show what the process pool adds;
- ``re-ingest unchanged``: the second ingest, which only hashes the files;
- ``synth``: how fast the synthetic source was written.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb

from bench.run import Measurement
from pipeline.ingest.run import ingest_paths
from pipeline.ingest.synth import write_synthetic
from pipeline.lake import Lake

RUNS = {"small": 2_300, "full": 60_000}  # about 8.6 KB per run: ~20 MB and ~515 MB


def _mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def run(size: str, workdir: Path) -> list[Measurement]:
    raw = workdir / "raw"
    started = time.perf_counter()
    files = write_synthetic(raw, RUNS[size], format="openai-chat", seed=7)
    synth_s = time.perf_counter() - started
    mb = _mb(files)
    cores = os.cpu_count()

    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        "create table runs as select * from read_json($files, format = 'newline_delimited')",
        {"files": [str(f) for f in files]},
    )
    duck_s = time.perf_counter() - started
    duck_rows = con.sql("select count(*) from runs").fetchall()[0][0]
    con.close()

    results = {}
    for label, jobs in (("pool", None), ("serial", 1)):
        lake = Lake(workdir / f"lake-{label}")
        shutil.rmtree(lake.base, ignore_errors=True)
        started = time.perf_counter()
        summary = ingest_paths(lake, [raw], jobs=jobs)
        results[label] = (time.perf_counter() - started, summary)
    pool_s, summary = results["pool"]
    assert summary.n_trajectories == duck_rows == RUNS[size], (summary.n_trajectories, duck_rows)
    started = time.perf_counter()
    again = ingest_paths(Lake(workdir / "lake-pool"), [raw])
    again_s = time.perf_counter() - started
    assert all(f.status == "unchanged" for f in again.files)

    load = round(os.getloadavg()[0], 1)  # other work on the machine slows every figure here
    common = {"input_mb": round(mb, 1), "files": len(files), "trajectories": summary.n_trajectories,
              "steps": summary.n_steps, "cores": cores, "load_average": load}  # fmt: skip
    return [
        Measurement(
            "ingest",
            "ingest throughput",
            mb / pool_s,
            "MB/s",
            reference_name="duckdb read_json, materialised",
            reference_value=mb / duck_s,
            notes=f"{mb:.0f} MB of chat JSONL, {summary.n_steps:,} steps, {cores} cores, "
            f"load average {load}",
            details={**common, "ingest_s": round(pool_s, 2), "duckdb_s": round(duck_s, 2)},
        ),  # fmt: skip
        Measurement(
            "ingest",
            "ingest throughput, one process",
            mb / results["serial"][0],
            "MB/s",
            reference_name="ingest with every core",
            reference_value=mb / pool_s,
            details={**common, "ingest_s": round(results["serial"][0], 2)},
        ),  # fmt: skip
        Measurement(
            "ingest",
            "re-ingest unchanged files",
            mb / again_s,
            "MB/s",
            reference_name="first ingest",
            reference_value=mb / pool_s,
            notes="sha256 per file, nothing parsed",
            details={"seconds": round(again_s, 2)},
        ),  # fmt: skip
        Measurement(
            "ingest",
            "synth write throughput",
            mb / synth_s,
            "MB/s",
            notes=f"{summary.n_trajectories:,} runs, seed 7",
            details={"seconds": round(synth_s, 2)},
        ),  # fmt: skip
    ]
