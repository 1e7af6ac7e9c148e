"""Repair what an interrupted or repeated analyse run can leave in `lessons` and `analyses`.

Run at the start and the end of every analyse (cheap when there is nothing to do: it reads ids
only), while other processes may be writing the same lake:

- a lessons part without the analyses part of the same name is either a batch in flight (its
  writer is between the two writes) or one whose writer was killed between them: it is deleted
  once its writer is gone (`writers.remove_abandoned`), and the batch is redone;
- unfinished files of writers that are gone (a kill mid-write) are deleted (`writers.sweep`);
- an analysis that was retried leaves two rows with the same analysis_id (the old error and the
  new result): the newer row is kept (an ok row always wins), so `analyses` keeps one row per
  trajectory and configuration;
- a lesson id present in two finished parts (two runs racing on one trajectory) keeps its first
  copy;
- a part written before a column was added to its table is rewritten with that column (null),
  so that every reader, polars' included, sees one schema.
"""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq

from pipeline import schemas, writers
from pipeline.analyse.summary import marker
from pipeline.lake import Lake

ATTEMPTS = 5  # reads of a part list that another process's tidy changed under them


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _with_paths(
    lake: Lake, table: str, columns: list[str], attempts: int = ATTEMPTS
) -> pl.DataFrame:
    parts = lake.parts(table)
    if not parts:
        return pl.DataFrame(schema={**{c: pl.String for c in columns}, "_part": pl.String})
    try:
        return (
            pl.scan_parquet(
                [lake.url(p) for p in parts],
                include_file_paths="_part",
                storage_options=lake.storage_options or None,
            )
            .select(*columns, "_part")
            .collect()
        )
    except FileNotFoundError:  # a part was removed since the listing: list again
        if attempts <= 1:
            raise
        return _with_paths(lake, table, columns, attempts - 1)


def _rewrite(lake: Lake, table: str, drop: pl.DataFrame, key: str) -> int:
    """Drop rows from their parts by key (keys are unique within a part: each part is validated
    on write), rewriting each touched part atomically under its own name."""
    n = 0
    for (path,), rows in drop.group_by("_part"):
        gone = set(rows.get_column(key).to_list())
        try:
            frame = pl.read_parquet(lake.url(path), storage_options=lake.storage_options or None)
        except FileNotFoundError:  # another process's tidy emptied it first
            continue
        frame = frame.filter(~pl.col(key).is_in(gone))
        # Parts written before a column was added lack it: it is null there.
        columns = schemas.table(table).columns
        frame = frame.with_columns(
            pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in frame.columns
        ).select(list(columns))
        part = _name(path).removeprefix("part-").removesuffix(".parquet")
        if frame.height:
            lake.write_part(table, frame, part=part)
        else:
            lake.delete_parts(table, [path])
        n += len(gone)
    return n


def _upgrade(lake: Lake, table: str) -> int:
    """Rewrite the parts of `table` that lack a column of its schema (read from the footers)."""
    columns = schemas.table(table).columns
    n = 0
    for path in lake.parts(table):
        try:
            if set(columns) <= set(pq.read_schema(path, filesystem=lake.fs).names):
                continue
            frame = pl.read_parquet(lake.url(path), storage_options=lake.storage_options or None)
        except FileNotFoundError:  # removed since the listing
            continue
        frame = frame.with_columns(
            pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in frame.columns
        ).select(list(columns))
        lake.write_part(
            table, frame, part=_name(path).removeprefix("part-").removesuffix(".parquet")
        )
        n += 1
    return n


def tidy(lake: Lake) -> dict[str, int]:
    """Repair the lake as above; returns what was done, by kind."""
    upgraded = _upgrade(lake, "analyses") + _upgrade(lake, "lessons")
    n_unfinished = writers.sweep(lake)
    n_orphans = marker(lake).remove_abandoned()

    analyses = _with_paths(lake, "analyses", ["analysis_id", "status", "finished_at"])
    stale = (
        analyses.sort(
            "analysis_id",
            pl.col("status") == "ok",
            "finished_at",
            "_part",
            descending=[False, True, True, True],
        )
        .with_columns(pl.int_range(pl.len()).over("analysis_id").alias("_rank"))
        .filter(pl.col("_rank") > 0)
    )
    n_stale = _rewrite(lake, "analyses", stale, "analysis_id") if stale.height else 0

    # Parts in flight (no analyses part yet) are their writer's: they are deduplicated once done.
    done = {_name(p) for p in lake.parts("analyses")}
    lessons = _with_paths(lake, "lessons", ["lesson_id"]).filter(
        pl.col("_part").str.extract(r"([^/]+)$", 1).is_in(done)
    )
    dupes = (
        lessons.sort("lesson_id", "_part")
        .with_columns(pl.int_range(pl.len()).over("lesson_id").alias("_rank"))
        .filter(pl.col("_rank") > 0)
    )
    n_dupes = _rewrite(lake, "lessons", dupes, "lesson_id") if dupes.height else 0
    return {
        "lessons parts without their analyses part": n_orphans,
        "unfinished files": n_unfinished,
        "superseded analysis rows": n_stale,
        "duplicate lesson rows": n_dupes,
        "parts upgraded to the current columns": upgraded,
    }
