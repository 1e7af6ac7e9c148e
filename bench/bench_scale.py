"""Scale-out: the miner's map on Ray Data against the local map, and a lake on S3 against a local one.

Pools are the demo data copied under new ids (`bench_analyse.build_pool`). Measured in the same
run, on the same pool:

- the map on a local Ray instance (every core; the Ray start counted apart) against the local map
  (worker processes, one per core): trajectories per second, and whether the lessons are the same;
- the map and a SQL aggregate on a lake in S3 against the same pool on a local disk. The S3 store
  is a moto server on loopback (pure Python, in this process): the figure bounds what the lake
  code adds over the store, not what a real object store does.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs

from bench.bench_analyse import build_pool
from bench.run import Measurement
from pipeline import sql
from pipeline.analyse.run import analyse
from pipeline.lake import Lake

SIZES = {"small": 5_000, "full": 50_000}
S3_SIZES = {"small": 2_000, "full": 10_000}
AGGREGATE = "select source, outcome, count(*), sum(n_steps) from trajectories group by all"


def _lessons(lake: Lake) -> pl.DataFrame:
    return lake.read("lessons").drop("created_at").sort("lesson_id")


def _aggregate(lake: Lake) -> list:
    con = sql.connect(lake)
    try:
        return con.sql(AGGREGATE).fetchall()
    finally:
        con.close()


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def ray_vs_local(size: str, workdir: Path) -> list[Measurement]:
    try:
        import ray
    except ImportError:
        print("   ray is not installed (pip install '.[ray]'): Ray figures skipped")
        return []
    local = build_pool(workdir / "local", SIZES[size])
    shutil.copytree(local.base, workdir / "ray-lake")
    on_ray = Lake(workdir / "ray-lake")
    n = local.scan("trajectories").select(pl.len()).collect().item()
    cores = os.cpu_count() or 1

    summary, local_s = _timed(lambda: analyse(local, batch_size=500, workers=cores))
    assert summary.n_analysed == n and summary.n_failed == 0, summary.errors
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    _, init_s = _timed(
        lambda: ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    )
    try:
        got, ray_s = _timed(lambda: analyse(on_ray, batch_size=500, engine="ray"))
    finally:
        ray.shutdown()
    assert got.n_analysed == n and got.n_failed == 0, got.errors
    same = _lessons(on_ray).equals(_lessons(local))
    load = round(os.getloadavg()[0], 1)  # other work on the machine slows both maps
    details = {"trajectories": n, "lessons": got.n_lessons, "same_lessons": same, "cores": cores}
    return [
        Measurement(
            "scale",
            "miner map on Ray Data (local instance)",
            n / ray_s,
            "trajectories/s",
            reference_name="local map, one worker process per core",
            reference_value=n / local_s,
            notes=f"{n:,} trajectories on {cores} cores; same lessons: {same}; Ray start "
            f"{init_s:.1f}s not included; load average {load}",
            details=details,
        ),
        Measurement(
            "scale",
            "Ray start (ray.init, local instance)",
            init_s,
            "s",
            notes="once per command; a running cluster (--ray-address) skips it",
        ),
    ]


def s3_vs_local(size: str, workdir: Path) -> list[Measurement]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_REGION", "AWS_ENDPOINT_URL")}  # fmt: skip
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    try:
        pafs.S3FileSystem(
            endpoint_override=f"{host}:{port}",
            scheme="http",
            access_key="bench",
            secret_key="bench",
            region="us-east-1",
            allow_bucket_creation=True,
        ).create_dir("bench")
        local = build_pool(workdir / "s3-local", S3_SIZES[size])
        remote = Lake("s3://bench/lake")
        remote.ensure()
        for table in ("trajectories", "steps"):
            pafs.copy_files(
                local.table_dir(table),
                remote.table_dir(table),
                source_filesystem=local.fs,
                destination_filesystem=remote.fs,
            )
        n = local.scan("trajectories").select(pl.len()).collect().item()
        timings = {}
        for name, lake in (("local", local), ("s3", remote)):
            _, timings[f"{name}_sql"] = _timed(lambda lake=lake: _aggregate(lake))
            summary, timings[f"{name}_map"] = _timed(
                lambda lake=lake: analyse(lake, batch_size=500, workers=1)
            )
            assert summary.n_analysed == n and summary.n_failed == 0, summary.errors
        same = _lessons(remote).equals(_lessons(local))
        load = round(os.getloadavg()[0], 1)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    details = {"trajectories": n, "same_lessons": same, **timings}
    return [
        Measurement(
            "scale",
            "miner map on an S3 lake (moto on loopback)",
            n / timings["s3_map"],
            "trajectories/s",
            reference_name="same pool on a local disk",
            reference_value=n / timings["local_map"],
            notes=f"{n:,} trajectories, one process; same lessons: {same}; load average {load}",
            details=details,
        ),
        Measurement(
            "scale",
            "SQL aggregate over trajectories on an S3 lake (moto on loopback)",
            timings["s3_sql"],
            "s",
            reference_name="same query, local disk",
            reference_value=timings["local_sql"],
            notes="DuckDB over pyarrow datasets; includes listing the parts",
            details=details,
        ),
    ]


def run(size: str, workdir: Path) -> list[Measurement]:
    # S3 first: processes of a Ray instance still exiting would slow whatever follows.
    return s3_vs_local(size, workdir) + ray_vs_local(size, workdir)
