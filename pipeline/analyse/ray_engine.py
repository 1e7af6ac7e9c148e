"""The analyse map on Ray Data (the optional ``ray`` extra): same batches, analyst and parts.

Reads `trajectories` and `steps`; writes `lessons` and `analyses` parts, exactly as the local map
does (`run.py`): the driver selects the work, prepares the analyst once (the miner's pool
statistics), cuts the sorted selection into the same batches and plans, for each batch, the
Parquet parts that hold its trajectories and steps (one scan of the id column). Ray Data then
maps those batch rows through a pool of actors, each holding one copy of the prepared analyst:
an actor reads its batch's rows from the planned parts, runs `analyse_batch`, and writes the
lessons part then the analyses part under the local map's part name. So a run on Ray leaves the
same lessons (ids included) and the same part names as a local run, and the two can take turns on
one lake: the cache (`analyses`) is shared, and a killed run resumes from the parts written.

Actors of a CPU-bound analyst (the miner) ask for one CPU each; analysts that wait on HTTP ask
for a quarter CPU, so a small machine still runs several of them (a whole CPU each deadlocks a
2-core pool). Workers reach the lake through the driver's `Lake`, credentials included: on a
cluster of several machines the lake must be shared storage (``s3://...``), and every node needs
trace2skill installed.

    summary = analyse(lake, engine="ray", ray_address=None)   # a local Ray instance
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from pipeline.analyse.analyst import Analyst, Batch
from pipeline.console import Console
from pipeline.lake import Lake

if TYPE_CHECKING:
    from pipeline.analyse.run import AnalyseSummary

HTTP_BOUND_CPUS = 0.25  # per actor of an analyst that mostly waits on a model server
MAX_ERRORS = 20  # as many first failures as the local map keeps
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")

_RESULT = pa.schema(
    [
        ("batch", pa.int64()),
        ("n_trajectories", pa.int64()),
        ("n_analysed", pa.int64()),
        ("n_failed", pa.int64()),
        ("n_lessons", pa.int64()),
        ("n_calls", pa.int64()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("cost_usd", pa.float64()),
        ("errors", pa.string()),  # JSON [[trajectory_id, reason], ...]
        ("lessons_by_rule", pa.string()),  # JSON {rule: count}
    ]
)


class RayUnavailable(RuntimeError):
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
    """A Ray Data actor: one prepared analyst; reads, analyses and writes whole batches."""

    def __init__(self, lake: Lake, analyst: list, cid: str):
        import ray

        self.lake, self.analyst, self.cid = lake, ray.get(analyst[0]), cid

    def __call__(self, rows: pa.Table) -> pa.Table:
        return pa.Table.from_pylist([self.one(row) for row in rows.to_pylist()], schema=_RESULT)

    def one(self, row: dict[str, Any]) -> dict[str, Any]:
        from pipeline.analyse.run import AnalyseSummary, _write_batch

        ids_ = row["trajectory_ids"]
        keep = pl.col("trajectory_id").is_in(ids_)
        batch = Batch(
            self.lake.scan("trajectories", row["trajectory_files"]).filter(keep).collect(),
            self.lake.scan("steps", row["step_files"]).filter(keep).collect(),
        )
        outcomes = self.analyst.analyse_batch(batch)
        a = self.analyst
        part = AnalyseSummary(a.name, a.model, a.prompt_version, self.cid)
        picked = pl.DataFrame({"trajectory_id": ids_}, schema={"trajectory_id": pl.String})
        _write_batch(self.lake, self.analyst, self.cid, picked, batch, outcomes, part)
        return {
            "batch": row["batch"],
            "n_trajectories": len(ids_),
            "n_analysed": part.n_analysed,
            "n_failed": part.n_failed,
            "n_lessons": part.n_lessons,
            "n_calls": part.usage.n_calls,
            "tokens_in": part.usage.tokens_in,
            "tokens_out": part.usage.tokens_out,
            "cost_usd": float(part.usage.cost_usd),
            "errors": json.dumps(part.errors),
            "lessons_by_rule": json.dumps(dict(part.lessons_by_rule)),
        }


def _root_cause(exc: BaseException) -> str:
    """The error a worker raised, out of the layers Ray wraps it in (Ray passes it on as text:
    the worker's traceback, innermost error first)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if _ERROR_LINE.match(line) and not line.startswith("ray."):
            return line
    return lines[0] if lines else type(exc).__name__


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


def run(
    lake: Lake,
    worker: Analyst,
    cid: str,
    todo: pl.DataFrame,
    size: int,
    summary: AnalyseSummary,
    console: Console,
    *,
    address: str | None = None,
    actors: int | None = None,
) -> None:
    """Analyse `todo` (trajectory_id, source) on Ray, batch by batch, into `summary`.

    `worker` is prepared; `actors` is the size of the actor pool (default: one per CPU of the
    cluster, at most one per batch).
    """
    ray = import_ray()
    from ray.data import ActorPoolStrategy, DataContext

    if address and lake.is_local:
        console.warn(
            f"{lake.uri} is a local folder: workers on other machines cannot see it "
            "(put the lake on s3:// for a cluster)"
        )
    batches = plan(lake, todo, size)
    started = _start(ray, address, console)
    context = DataContext.get_current()
    logger = logging.getLogger("ray.data")
    saved = (context.enable_progress_bars, context.print_on_execution_start, logger.level)
    try:
        # The console's bar reports progress; Ray Data's own bars and banners would interleave.
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logger.setLevel(logging.ERROR)
        cpus = 1.0 if getattr(worker, "cpu_bound", False) else HTTP_BOUND_CPUS
        pool = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        pool = max(1, min(pool, batches.height))
        console.detail(f"analysing {batches.height} batches in {pool} Ray actors ({cpus:g} CPU)")
        table = batches.to_arrow()
        # One block per batch, so the actors share the batches out between them.
        blocks = [table.slice(i, 1) for i in range(table.num_rows)]
        dataset = ray.data.from_arrow(blocks).map_batches(
            _AnalyseBatches,
            # The prepared analyst (the miner's pool statistics: large) goes to the object store
            # once; actors fetch it by reference, so a restarted actor can fetch it again.
            fn_constructor_kwargs={"lake": lake, "analyst": [ray.put(worker)], "cid": cid},
            batch_size=1,  # a planned batch is the unit of work: it is written as one part
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=pool),
            num_cpus=cpus,
        )
        rules: Counter = Counter()
        errors: list[tuple[str, str]] = []
        with console.progress(f"analysing ({worker.name}, Ray)", todo.height) as advance:
            try:
                for result in dataset.iter_rows():
                    summary.n_analysed += result["n_analysed"]
                    summary.n_failed += result["n_failed"]
                    summary.n_lessons += result["n_lessons"]
                    summary.usage.n_calls += result["n_calls"]
                    summary.usage.tokens_in += result["tokens_in"]
                    summary.usage.tokens_out += result["tokens_out"]
                    summary.usage.cost_usd += result["cost_usd"]
                    rules.update(json.loads(result["lessons_by_rule"]))
                    errors += [tuple(e) for e in json.loads(result["errors"])]
                    advance(result["n_trajectories"])
            except ray.exceptions.RayError as exc:
                from pipeline.analyse.run import AnalyseError

                raise AnalyseError(
                    f"the Ray map stopped: {_root_cause(exc)}; the batches written so far are "
                    "kept and the next run resumes after them"
                ) from exc
        summary.lessons_by_rule.update(rules)
        summary.errors += sorted(errors)[: max(0, MAX_ERRORS - len(summary.errors))]
    finally:
        context.enable_progress_bars, context.print_on_execution_start = saved[:2]
        logger.setLevel(saved[2])
        if started:
            ray.shutdown()
