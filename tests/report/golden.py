"""Golden files: compare a rendered result with tests/golden/..., or rewrite it under
T2S_UPDATE_GOLDEN=1 (`make golden`)."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import polars as pl

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def rows_text(frame: pl.DataFrame) -> str:
    """One JSON object per row, columns in order: stable, readable, diffable."""
    lines = [json.dumps(list(frame.columns))]
    lines += [json.dumps(row, default=str, ensure_ascii=False) for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def check(relative: str, text: str) -> None:
    path = GOLDEN / relative
    if os.environ.get("T2S_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}: run `make golden` and review it"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "got")
        )
        raise AssertionError(f"{relative} differs from its golden file:\n{diff}")
