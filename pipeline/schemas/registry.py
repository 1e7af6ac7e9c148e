"""The registry of lake tables: a name, its pandera model and its partition columns.

A leaf module: the table modules of this package register their models here when imported
(`pipeline.schemas` imports them all), and nothing here imports them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl


@dataclass(frozen=True)
class Table:
    name: str
    model: type[pa.DataFrameModel]
    partition_by: tuple[str, ...] = ()

    @property
    def grain(self) -> str:
        return (self.model.__doc__ or "").strip().splitlines()[0]

    @property
    def columns(self) -> dict[str, pl.DataType]:
        """Column name -> polars dtype, in declared order, partition columns included."""
        return {name: col.dtype.type for name, col in self.model.to_schema().columns.items()}

    @property
    def descriptions(self) -> dict[str, str]:
        return {n: c.description or "" for n, c in self.model.to_schema().columns.items()}


REGISTRY: dict[str, Table] = {}


def register(name: str, *, partition_by: tuple[str, ...] = ()):
    """Class decorator: add a pandera model to the registry under a table name."""

    def wrap(model: type[pa.DataFrameModel]) -> type[pa.DataFrameModel]:
        REGISTRY[name] = Table(name, model, partition_by)
        return model

    return wrap
