"""Query results out: a table on the terminal, or CSV, JSON or Parquet to stdout or a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import polars as pl

from pipeline.console import Console

FORMATS = ("table", "csv", "json", "parquet")
_SUFFIX = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".txt": "table"}


def pick_format(fmt: str | None, out: Path | None) -> str:
    """The explicit format, else the one the --out suffix names, else a table."""
    if fmt is not None:
        return fmt
    if out is None:
        return "table"
    try:
        return _SUFFIX[out.suffix.lower()]
    except KeyError:
        raise click.UsageError(
            f"cannot tell the format of {out} from its suffix: pass --format csv|json|parquet"
        ) from None


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested columns as JSON text, so CSV can hold them."""
    nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
    if not nested:
        return frame
    return frame.with_columns(
        pl.col(c).map_elements(
            lambda v: json.dumps(v.to_list() if isinstance(v, pl.Series) else v, default=str),
            return_dtype=pl.String,
        )
        for c in nested
    )


def show(console: Console, frame: pl.DataFrame, *, max_rows: int = 100) -> None:
    """A readable table on stdout, cut at `max_rows` with a note on stderr."""
    shown = frame.head(max_rows)
    console.table(None, frame.columns, shown.iter_rows())
    if frame.height > max_rows:
        console.info(
            f"{frame.height} rows, {max_rows} shown: use --max-rows, --format csv or --out FILE"
        )
    elif frame.height == 0:
        console.info("0 rows")


def emit(
    console: Console,
    frame: pl.DataFrame,
    fmt: str,
    out: Path | None = None,
    *,
    max_rows: int = 100,
) -> None:
    """Write `frame` in `fmt` to `out`, or to stdout."""
    if fmt == "table":
        if out is None:
            show(console, frame, max_rows=max_rows)
            return
        Path(out).write_text(_text(frame), encoding="utf-8")
    elif fmt == "csv":
        text = _flat(frame).write_csv()
        _put(text, out)
    elif fmt == "json":
        _put(frame.write_json(), out)
    elif fmt == "parquet":
        if out is None:
            raise click.UsageError("--format parquet needs --out FILE")
        frame.write_parquet(out)
    else:
        raise click.UsageError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if out is not None:
        console.info(f"wrote {frame.height} rows to {out}")


def _text(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=1000, tbl_width_chars=10_000):
        return str(frame) + "\n"


def _put(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()
    else:
        Path(out).write_text(text, encoding="utf-8")
