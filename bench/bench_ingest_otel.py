"""OpenTelemetry ingest: MB/s of OTLP trace files into the lake, beside DuckDB's read_json of the
same files, and runs/s beside the same number of runs as chat JSONL.

A synthetic OTLP source (``trace2skill synth --format otel``: booking and coding runs, a model
span per assistant message sent the whole history, a tool span per call, in the three message
conventions) of about 40 MB ("small") or 400 MB ("full") is written, then:

- ``otel ingest``: ``ingest_paths`` into a fresh lake with every core (parse spans, order them,
  match every history against the run so far, link calls and results, hash, validate, write);
- reference: DuckDB ``read_json`` materialising the same files as a table (parse only);
- ``otel ingest, runs/s``: the same ingest in runs per second, beside ``ingest_paths`` over the
  same number of synthetic runs written as OpenAI chat JSONL (each run held once, no history
  repeated), so the cost of reading runs out of traces shows.
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

RUNS = {"small": 600, "full": 6_000}  # about 68 KB of spans per run


def _ingest(raw: Path, lake_dir: Path):
    shutil.rmtree(lake_dir, ignore_errors=True)
    started = time.perf_counter()
    summary = ingest_paths(Lake(lake_dir), [raw])
    return time.perf_counter() - started, summary


def run(size: str, workdir: Path) -> list[Measurement]:
    n = RUNS[size]
    raw = workdir / "otel"
    shutil.rmtree(raw, ignore_errors=True)
    started = time.perf_counter()
    files = write_synthetic(raw, n, format="otel", seed=7)
    synth_s = time.perf_counter() - started
    mb = sum(p.stat().st_size for p in files) / 1e6

    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        "create table spans as select * from read_json($files, format = 'newline_delimited', "
        "maximum_object_size = 268435456)",
        {"files": [str(f) for f in files]},
    )
    duck_s = time.perf_counter() - started
    lines = con.sql("select count(*) from spans").fetchall()[0][0]
    con.close()

    otel_s, summary = _ingest(raw, workdir / "lake-otel")
    assert summary.n_trajectories == n and not summary.errors, summary.errors[:3]

    chat = workdir / "chat"
    shutil.rmtree(chat, ignore_errors=True)
    chat_mb = sum(p.stat().st_size for p in write_synthetic(chat, n, seed=7)) / 1e6
    chat_s, chat_summary = _ingest(chat, workdir / "lake-chat")
    assert chat_summary.n_trajectories == n

    load = round(os.getloadavg()[0], 1)  # other work on the machine slows every figure here
    common = {"input_mb": round(mb, 1), "files": len(files), "export_lines": lines,
              "trajectories": n, "steps": summary.n_steps, "cores": os.cpu_count(),
              "load_average": load}  # fmt: skip
    return [
        Measurement(
            "ingest_otel",
            "otel ingest throughput",
            mb / otel_s,
            "MB/s",
            reference_name="duckdb read_json, materialised",
            reference_value=mb / duck_s,
            notes=f"{mb:.0f} MB of OTLP JSON lines, {summary.n_steps:,} steps, load {load}",
            details={**common, "ingest_s": round(otel_s, 2), "duckdb_s": round(duck_s, 2)},
        ),
        Measurement(
            "ingest_otel",
            "otel ingest, runs per second",
            n / otel_s,
            "runs/s",
            reference_name="the same number of runs as chat JSONL",
            reference_value=n / chat_s,
            notes=f"otel {mb:.0f} MB vs chat {chat_mb:.0f} MB for {n:,} runs",
            details={"otel_s": round(otel_s, 2), "chat_s": round(chat_s, 2)},
        ),
        Measurement(
            "ingest_otel",
            "synth write throughput, otel",
            mb / synth_s,
            "MB/s",
            notes=f"{n:,} runs, seed 7",
            details={"seconds": round(synth_s, 2)},
        ),
    ]
