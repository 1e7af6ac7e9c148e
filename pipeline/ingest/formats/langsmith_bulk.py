"""LangSmith bulk data export (Parquet) -> run records as the JSON export holds them.

LangSmith's bulk export (``POST /api/v1/bulk-exports``) writes a project's runs to an S3 bucket
as Parquet, one row per run, under ``export_id=/tenant_id=/session_id=/runs/year=/month=/day=``.
Its columns are the fields of the "Run data format": ``id``, ``trace_id``, ``parent_run_id``,
``parent_run_ids``, ``dotted_order``, ``is_root``, ``name``, ``run_type``, ``status``,
``error``, ``start_time``, ``end_time``, ``first_token_time``, ``inputs``, ``outputs``,
``extra``, ``events``, ``tags``, ``feedback_stats``, ``reference_example_id``, ``session_id``,
``tenant_id``, ``trace_tier``, token counts and costs (``export_fields`` may leave some out).
Objects and lists are JSON text in the export; they are decoded here (structs and maps, as
another writer may store them, are read too, with the empty fields a struct adds dropped).
Times are Parquet timestamps, naive UTC (format ``v1``) or UTC-aware (``v2_beta``), or text;
they become ISO text. Ids stored as UUIDs or 16 bytes become their usual text.

Each row is then a run as ``client.list_runs`` gives it, read by ``langsmith_runs`` like the
JSON export: there is one path from records to trajectories. A row whose JSON text does not
parse is a bad record naming the column; the rest of the file is read. The export has no
feedback records, only each run's ``feedback_stats``.

A file is read on its own: a trace whose runs the export spread over several files (a day
boundary, or a large export written in parts) gives one trajectory per file. Merge such files
first (``duckdb -c "copy (select * from 'runs/**/*.parquet') to 'runs.parquet'"``).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.rawfile import FileError, RawFile, loads
from pipeline.ingest.record import BadRecord

JSON_COLUMNS = ("inputs", "outputs", "extra", "events", "tags", "feedback_stats",
                "parent_run_ids")  # fmt: skip
ID_COLUMNS = ("id", "trace_id", "parent_run_id", "reference_example_id", "session_id",
              "tenant_id")  # fmt: skip
# A run of the export: its id and type, and where it sits in its trace or what it holds.
REQUIRED = frozenset({"id", "run_type"})
ANY_OF = frozenset({"trace_id", "dotted_order", "inputs", "outputs"})
BATCH_ROWS = 2_000  # rows decoded at a time: an export's inputs and outputs can be large


def is_export(raw: RawFile) -> bool:
    """A Parquet file whose columns are those of LangSmith runs."""
    names = set(raw.parquet_columns)
    return REQUIRED <= names and bool(ANY_OF & names)


def rows(raw: RawFile) -> Iterator[tuple[str, Any]]:
    """(where, run record or BadRecord) for every row of the export."""
    try:
        batches = pq.ParquetFile(pa.BufferReader(raw.data)).iter_batches(batch_size=BATCH_ROWS)
        n = 0
        for batch in batches:
            for row in _in_microseconds(batch).to_pylist():
                yield f"row {n}", _run(row, f"row {n}")
                n += 1
    except (pa.ArrowException, OSError) as exc:
        raise FileError(f"not a readable Parquet file: {exc}") from None


def _in_microseconds(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps in UTC (naive ones are UTC in the export) to the microsecond, as the JSON
    export writes them and as a Python datetime holds them (nanoseconds would not convert)."""
    columns = [
        col.cast(pa.timestamp("us", "UTC"), safe=False) if pa.types.is_timestamp(col.type) else col
        for col in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _run(row: dict, where: str) -> dict | BadRecord:
    out: dict[str, Any] = {}
    for key, value in row.items():
        value = _present(value)
        if key in ID_COLUMNS:
            value = _id(value)
        elif key in JSON_COLUMNS:
            try:
                value = _decoded(value)
            except ValueError as exc:
                run = _id(_present(row.get("id")))
                return BadRecord(where, f"run {run}: '{key}' is not readable JSON ({exc})")
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        out[key] = value
    return out


def _decoded(value: Any) -> Any:
    """JSON text -> its value; a struct or map -> a dict without the fields it does not have."""
    if isinstance(value, str):
        return loads(value) if value.strip() else None
    return _without_nulls(value)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, list) and value and all(_is_entry(v) for v in value):  # a map
        value = dict(value)
    if isinstance(value, dict):
        return {str(k): _without_nulls(v) for k, v in value.items() if _present(v) is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _is_entry(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def _id(value: Any) -> Any:
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return str(value) if isinstance(value, uuid.UUID) else value


def _present(value: Any) -> Any:
    """None for the NaN a dataframe writes for a missing value."""
    return None if isinstance(value, float) and math.isnan(value) else value
