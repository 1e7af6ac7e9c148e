"""The analyse map on Ray Data (the optional ``ray`` extra): same batches, analyst and parts.

Reads `trajectories` and `steps`; writes `lessons` and `analyses` parts, exactly as the local map
does (`run.py`): the driver selects the work, cuts the sorted selection into the same batches and
plans, for each batch, the Parquet parts that hold its trajectories and steps (one scan of the id
column). Ray Data then maps those batch rows through a pool of actors, each holding one copy of
the analyst: an actor reads its batch's rows from the planned parts and does the batch's work
(`mapper.analysed`); the results come back in batch order and the driver commits them as the local
map does (`mapper.Commit`: the lessons part, then the analyses part, under the same name). Ray is
one backend of the executor (`pipeline.executor`), so a run on Ray leaves the same lessons (ids
included) and the same part names as a local run, and the two can take turns on one lake: the
cache (`analyses`) is shared, and a killed run resumes from the parts written.

A CPU-bound analyst (the miner) is prepared once by the driver (its pool statistics) and its
actors ask for one CPU each. A model analyst is prepared in each actor (its own client, with its
share of the run's concurrency and token and cost budgets) and its actors ask for a quarter CPU,
so a small machine still runs several of them (a whole CPU each deadlocks a 2-core pool); every
call is logged in `llm_calls` by the actor that made it. Actors read the lake through the
driver's `Lake`, credentials included: on a cluster of several machines the lake must be shared
storage (``s3://...``), and every node needs trace2skill installed.

    summary = analyse(lake, engine="ray", ray_address=None)   # a local Ray instance
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
import re
import socket
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa

from pipeline import executor
from pipeline.analyse.analyst import Analyst, Batch
from pipeline.analyse.mapper import Commit, analysed
from pipeline.console import Console
from pipeline.errors import UserError
from pipeline.lake import Lake

if TYPE_CHECKING:
    from pipeline.analyse.run import AnalyseSummary

HTTP_BOUND_CPUS = 0.25  # per actor of an analyst that mostly waits on a model server
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")

_RESULT = pa.schema(
    [
        ("batch", pa.int64()),
        ("analysed", pa.binary()),  # the batch's work (`mapper.Analysed`), pickled
    ]
)


class RayUnavailable(UserError, RuntimeError):
    """The ray extra is not installed."""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailable(
            "--engine ray needs the ray extra: pip install 'trace2skill[ray]'"
        ) from exc
    return ray


def _files_of(lake: Lake, table: str, batches: pl.DataFrame) -> pl.DataFrame:
    """(batch, files): the parts of `table` holding rows of each batch's trajectories."""
    parts = lake.parts(table)
    if not parts:
        return pl.DataFrame(schema={"batch": pl.Int64, "files": pl.List(pl.String)})
    by_url = {lake.url(p): p for p in parts}
    found = (
        pl.scan_parquet(
            list(by_url),
            include_file_paths="_file",
            hive_partitioning=False,
            storage_options=lake.storage_options or None,
        )
        .select("trajectory_id", "_file")
        .join(batches.lazy().select("trajectory_id", "batch"), on="trajectory_id", how="inner")
        .select("batch", "_file")
        .unique()
        .collect()
    )
    return (
        found.with_columns(pl.col("_file").replace_strict(by_url, return_dtype=pl.String))
        .group_by("batch")
        .agg(files=pl.col("_file").unique().sort())
    )


def plan(lake: Lake, todo: pl.DataFrame, size: int) -> pl.DataFrame:
    """One row per batch: its trajectory ids (the local map's batches: the selection sorted by
    id, cut every `size`) and the trajectories and steps parts to read them from."""
    batches = (
        todo.select("trajectory_id")
        .sort("trajectory_id")
        .with_row_index("n")
        .with_columns(batch=(pl.col("n") // size).cast(pl.Int64))
    )
    ids_of = batches.group_by("batch").agg(trajectory_ids=pl.col("trajectory_id").sort())
    empty: pl.Expr = pl.lit([], dtype=pl.List(pl.String))
    out = ids_of
    for table, column in (("trajectories", "trajectory_files"), ("steps", "step_files")):
        files = _files_of(lake, table, batches).rename({"files": column})
        out = out.join(files, on="batch", how="left").with_columns(pl.col(column).fill_null(empty))
    return out.sort("batch")


class _AnalyseBatches:
    """A Ray Data actor: one analyst; reads and analyses whole batches (the driver writes them).

    A CPU-bound analyst arrives prepared (the miner's pool statistics, computed once by the
    driver); an analyst that waits on a model server is prepared here, so each actor opens its
    own client (its share of the run's concurrency and budget, see `_share`)."""

    def __init__(self, lake: Lake, analyst: list, prepare: bool):
        import ray

        self.lake, self.analyst = lake, ray.get(analyst[0])
        if prepare:
            from pipeline import sql

            con = sql.connect(lake)
            try:
                self.analyst.prepare(lake, con)
            finally:
                con.close()

    def __call__(self, rows: pa.Table) -> pa.Table:
        return pa.Table.from_pylist([self.one(row) for row in rows.to_pylist()], schema=_RESULT)

    def one(self, row: dict[str, Any]) -> dict[str, Any]:
        keep = pl.col("trajectory_id").is_in(row["trajectory_ids"])
        batch = Batch(
            self.lake.scan("trajectories", row["trajectory_files"]).filter(keep).collect(),
            self.lake.scan("steps", row["step_files"]).filter(keep).collect(),
        )
        done = analysed(self.analyst, row["trajectory_ids"], batch)
        return {"batch": row["batch"], "analysed": pickle.dumps(done)}


def _share(worker: Analyst, actors: int) -> Analyst:
    """The analyst each actor gets: a model analyst's concurrency and budgets are the run's, so
    each of `actors` clients gets its share (what decides the answers is unchanged)."""
    settings = worker.model_settings
    if settings is None or actors <= 1:
        return worker
    shared = copy.copy(worker)
    shared.model_settings = settings.model_copy(
        update={
            "concurrency": max(1, math.ceil(settings.concurrency / actors)),
            "token_budget": None
            if settings.token_budget is None
            else settings.token_budget // actors,
            "cost_budget_usd": None
            if settings.cost_budget_usd is None
            else settings.cost_budget_usd / actors,
        }
    )
    return shared


def _root_cause(exc: BaseException) -> str:
    """The error a worker raised, out of the layers Ray wraps it in (Ray passes it on as text:
    the worker's traceback, innermost error first)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if _ERROR_LINE.match(line) and not line.startswith("ray."):
            return line
    return lines[0] if lines else type(exc).__name__


def check_address(address: str | None) -> None:
    """Fail at once on a cluster address nothing answers at (Ray itself keeps retrying for
    minutes). `auto` and no address are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        from pipeline.analyse.run import AnalyseError

        raise AnalyseError(
            f"cannot reach the Ray cluster at {address!r} ({exc}); give host:port of the head "
            "node (ray start --head prints it), ray://host:10001, or auto"
        ) from None


def _start(ray, address: str | None, console: Console) -> bool:
    """Connect to `address` (or start a local instance); True when this call started Ray."""
    if ray.is_initialized():
        return False
    ray.init(
        address=address,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    where = address or "a local Ray instance"
    console.detail(f"Ray: {where}, {ray.cluster_resources().get('CPU', 0):g} CPUs")
    return True


def backend(
    lake: Lake, worker: Analyst, pool: int, *, ray
) -> executor.Backend[dict[str, Any], Any]:
    """The executor's backend on Ray: planned batches (rows of `plan`) in, (row, the batch's
    `mapper.Analysed`) out, in batch order; `pool` actors, each with its share of `worker`."""
    from ray.data import ActorPoolStrategy, DataContext

    def work(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Any]]:
        by_batch = {row["batch"]: row for row in rows}
        table = pl.DataFrame(list(by_batch.values())).to_arrow() if by_batch else None
        if table is None:
            return
        DataContext.get_current().execution_options.preserve_order = True
        cpus = 1.0 if worker.cpu_bound else HTTP_BOUND_CPUS
        # One block per batch, so the actors share the batches out between them.
        blocks = [table.slice(i, 1) for i in range(table.num_rows)]
        dataset = ray.data.from_arrow(blocks).map_batches(
            _AnalyseBatches,
            # The analyst (with the miner's pool statistics: large) goes to the object store
            # once; actors fetch it by reference, so a restarted actor can fetch it again.
            fn_constructor_kwargs={
                "lake": lake,
                "analyst": [ray.put(_share(worker, pool))],
                "prepare": not worker.cpu_bound,
            },
            batch_size=1,  # a planned batch is the unit of work: it is committed as one part
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=pool),
            num_cpus=cpus,
        )
        for result in dataset.iter_rows():
            yield by_batch[result["batch"]], pickle.loads(result["analysed"])

    return work


def run(
    lake: Lake,
    worker: Analyst,
    cid: str,
    todo: pl.DataFrame,
    size: int,
    summary: AnalyseSummary,
    console: Console,
    *,
    con: duckdb.DuckDBPyConnection,
    address: str | None = None,
    actors: int | None = None,
) -> None:
    """Analyse `todo` (trajectory_id, source) on Ray, batch by batch, into `summary`.

    `worker` is not prepared yet; `con` sees the lake (for a CPU-bound analyst's preparation).
    `actors` is the size of the actor pool (default: one per CPU of the cluster, at most one per
    batch). A model analyst whose budget is spent stops the run after that batch's commit; the
    batches then in flight are dropped (their answers stay in `llm_calls` for the rerun).
    """
    ray = import_ray()
    from ray.data import DataContext

    if address and lake.is_local:
        console.warn(
            f"{lake.uri} is a local folder: workers on other machines cannot see it "
            "(put the lake on s3:// for a cluster)"
        )
    check_address(address)
    if worker.cpu_bound:
        worker.prepare(lake, con)  # pool-level work, once
    batches = plan(lake, todo, size)
    started = _start(ray, address, console)
    context = DataContext.get_current()
    logger = logging.getLogger("ray.data")
    saved = (
        context.enable_progress_bars,
        context.print_on_execution_start,
        context.execution_options.preserve_order,
        logger.level,
    )
    try:
        # The console's bar reports progress; Ray Data's own bars and banners would interleave.
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logger.setLevel(logging.ERROR)
        pool = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pool = max(1, min(pool, batches.height))
        cpus = 1.0 if worker.cpu_bound else HTTP_BOUND_CPUS
        console.detail(f"analysing {batches.height} batches in {pool} Ray actors ({cpus:g} CPU)")
        with console.progress(f"analysing ({worker.name}, Ray)", todo.height) as advance:
            commit = Commit(lake, worker, cid, summary, todo.height, advance)
            try:
                executor.run(
                    batches.iter_rows(named=True),
                    backend(lake, worker, pool, ray=ray),
                    lambda row, result: commit(row["trajectory_ids"], result),
                )  # a stop leaves the rest for a rerun
            except ray.exceptions.RayError as exc:
                from pipeline.analyse.run import AnalyseError

                raise AnalyseError(
                    f"the Ray map stopped: {_root_cause(exc)}; the batches written so far are "
                    "kept and the next run resumes after them"
                ) from exc
    finally:
        context.enable_progress_bars, context.print_on_execution_start = saved[:2]
        context.execution_options.preserve_order = saved[2]
        logger.setLevel(saved[3])
        if started:
            ray.shutdown()
