"""Which trajectories an analyse run takes, and reading them from the lake in batches.

Reads `trajectories` (through DuckDB: the user's --where, `sql/analyse_selection.sql` for the
sample, the limit and what is already done) and `steps`; writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import polars as pl

from pipeline import schemas, sql
from pipeline.analyse.analyst import Batch
from pipeline.analyse.summary import AnalyseError
from pipeline.lake import Lake

CHUNK_ROWS = 10_000  # trajectories read from the lake at once, then split into batches


def select(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    cid: str,
    *,
    where: str | None,
    sample: float | int | None,
    seed: int,
    limit: int | None,
) -> pl.DataFrame:
    """The selection (trajectory_id, source, outcome, pick_order, is_done) in pick order."""
    filt = where.strip() if where and where.strip() else "true"
    if ";" in filt:
        raise AnalyseError(f"--where must be one filter expression, got {where!r}")
    try:
        # The filter is the user's own SQL over their own lake; values they pass stay theirs.
        con.sql(
            "create or replace temp view selected_trajectories as "
            f"select * from trajectories where ({filt})"
        )
        con.sql("select count(*) from selected_trajectories").fetchall()
    except duckdb.Error as exc:
        columns = ", ".join(schemas.table("trajectories").columns)
        raise AnalyseError(
            f"--where {where!r} is not a valid filter on trajectories ({exc}); columns: {columns}"
        ) from exc
    sample_n = sample_frac = None
    if sample is not None:
        if isinstance(sample, float) and 0 < sample < 1:
            sample_frac = sample
        elif float(sample) >= 1 and float(sample).is_integer():
            sample_n = int(sample)
        else:
            raise AnalyseError(
                f"--sample must be a count >= 1 or a fraction in (0, 1), got {sample}"
            )
    if limit is not None and limit < 0:
        raise AnalyseError(f"--limit must be >= 0, got {limit}")
    return sql.query(
        con,
        "analyse_selection",
        config_id=cid,
        seed=str(seed),
        sampled=sample is not None,
        sample_n=sample_n,
        sample_frac=sample_frac,
        limit=limit,
    )


def _load(lake: Lake, picked: pl.DataFrame) -> Batch:
    ids_ = picked.get_column("trajectory_id").to_list()
    sources = picked.get_column("source").unique().to_list()
    keep = pl.col("trajectory_id").is_in(ids_) & pl.col("source").is_in(sources)
    return Batch(
        lake.scan("trajectories").filter(keep).collect(), lake.scan("steps").filter(keep).collect()
    )


def batches(lake: Lake, todo: pl.DataFrame, size: int) -> Iterator[tuple[pl.DataFrame, Batch]]:
    """Batches of `size` trajectories with their steps. The lake is read a chunk of batches at a
    time (one scan serves many batches; memory stays bounded by the chunk)."""
    chunk = size * max(1, CHUNK_ROWS // size)
    for start in range(0, todo.height, chunk):
        wanted = todo.slice(start, chunk)
        loaded = _load(lake, wanted)
        steps_of = loaded.steps.partition_by("trajectory_id", as_dict=True)
        for offset in range(0, wanted.height, size):
            picked = wanted.slice(offset, size)
            ids_ = picked.get_column("trajectory_id").to_list()
            parts = [steps_of[(t,)] for t in ids_ if (t,) in steps_of]
            yield (
                picked,
                Batch(
                    loaded.trajectories.filter(pl.col("trajectory_id").is_in(ids_)),
                    pl.concat(parts) if parts else loaded.steps.clear(),
                ),
            )
