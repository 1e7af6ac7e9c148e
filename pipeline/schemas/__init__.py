"""Every lake table's schema, in one registry.

Each table is a strict pandera model (one per module of this package, grouped by the stage that
writes it) whose docstring states the grain and whose fields carry descriptions. From the model
we derive the explicit Arrow schema used on write, so the two never disagree.

    from pipeline import schemas
    df = schemas.validate("steps", df)        # coerce + check, raises TableError naming the table
    arrow = schemas.to_arrow("steps", df)      # cast to the explicit Arrow schema
"""

from __future__ import annotations

import pandera.errors as pa_errors
import polars as pl
import pyarrow as pa_arrow

from pipeline.errors import UserError
from pipeline.schemas.registry import REGISTRY, Table, register  # noqa: F401  (re-exported)

SCHEMA_VERSION = 1


class TableError(UserError, ValueError):
    """A frame does not fit its table's schema."""


def table(name: str) -> Table:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {sorted(REGISTRY)}") from None


def empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=table(name).columns)


def validate(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """Check columns first (one clear message), then coerce and run every check."""
    spec = table(name)
    expected = set(spec.columns)
    missing, extra = expected - set(df.columns), set(df.columns) - expected
    if missing or extra:
        raise TableError(
            f"table {name}: missing columns {sorted(missing)}, unexpected columns {sorted(extra)}"
        )
    try:
        # An all-null column arrives as dtype Null, which pandera's coercion does not cast.
        df = df.select([pl.col(c).cast(dt) for c, dt in spec.columns.items()])
        return spec.model.validate(df, lazy=True)
    except pl.exceptions.InvalidOperationError as exc:
        raise TableError(
            f"table {name}: a column cannot be cast to its declared type: {exc}"
        ) from exc
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(10).select("column", "check", "failure_case").rows()
        listed = "; ".join(f"{col}: {check} (got {case!r})" for col, check, case in cases)
        raise TableError(f"table {name}: {listed}") from exc


def arrow_type(dtype: pl.DataType) -> pa_arrow.DataType:
    """Plain (not large_) Arrow types for a polars dtype, so every reader accepts our files."""
    if isinstance(dtype, pl.List):
        return pa_arrow.list_(arrow_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pa_arrow.struct([(f.name, arrow_type(f.dtype)) for f in dtype.fields])
    if isinstance(dtype, pl.Array):
        return pa_arrow.list_(arrow_type(dtype.inner), dtype.size)
    simple = {
        pl.String: pa_arrow.string(),
        pl.Boolean: pa_arrow.bool_(),
        pl.Int8: pa_arrow.int8(),
        pl.Int16: pa_arrow.int16(),
        pl.Int32: pa_arrow.int32(),
        pl.Int64: pa_arrow.int64(),
        pl.UInt32: pa_arrow.uint32(),
        pl.UInt64: pa_arrow.uint64(),
        pl.Float32: pa_arrow.float32(),
        pl.Float64: pa_arrow.float64(),
        pl.Date: pa_arrow.date32(),
        pl.Binary: pa_arrow.binary(),
    }
    if isinstance(dtype, pl.Datetime):
        return pa_arrow.timestamp(dtype.time_unit or "us", tz=dtype.time_zone)
    for pl_type, arrow in simple.items():
        if dtype == pl_type:
            return arrow
    raise TypeError(f"no Arrow mapping for {dtype}")


def arrow_schema(name: str, *, with_partitions: bool = False) -> pa_arrow.Schema:
    spec = table(name)
    fields = [
        pa_arrow.field(col, arrow_type(dt), metadata={"description": spec.descriptions[col]})
        for col, dt in spec.columns.items()
        if with_partitions or col not in spec.partition_by
    ]
    return pa_arrow.schema(
        fields, metadata={"table": name, "grain": spec.grain, "schema_version": str(SCHEMA_VERSION)}
    )


def to_arrow(name: str, df: pl.DataFrame, *, with_partitions: bool = False) -> pa_arrow.Table:
    schema = arrow_schema(name, with_partitions=with_partitions)
    return df.select(schema.names).to_arrow().cast(schema)


# The table modules register themselves on import.
from pipeline.schemas import (  # noqa: E402,F401
    analysis,
    behaviour,
    consolidation,
    evaluation,
    llm,
    trajectory,
)
