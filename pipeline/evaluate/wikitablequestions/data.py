"""Reading the WikiTableQuestions files: question splits (``data/*.tsv``) and tables (``csv/``).

The layout is the original release's: ``data/training.tsv``, ``data/pristine-unseen-tables.tsv``
(the test split), ``csv/20x-csv/N.csv``. The CSVs are not RFC 4180: quotes inside a cell are
escaped with a backslash (``\\"``), backslashes are doubled, and headers may hold line breaks,
repeat a name or be empty. ``read_table`` handles all of it and gives SQL-safe column names.
"""

from __future__ import annotations

import csv
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.errors import UserError
from pipeline.evaluate.wikitablequestions.scorer import tsv_unescape, tsv_unescape_list
from pipeline.ids import digest
from pipeline.resources import WTQ_SAMPLE_DIR

SAMPLE_DIR = WTQ_SAMPLE_DIR
SPLITS = {"train": "training", "test": "pristine-unseen-tables", "dev": "pristine-seen-tables"}
QUESTION_COLUMNS = ["id", "utterance", "context", "targetValue"]


class DataError(UserError, ValueError):
    """A dataset file cannot be read; the message names the file and the record."""


@dataclass(frozen=True)
class Question:
    id: str
    utterance: str
    context: str  # table path relative to the data folder, e.g. csv/204-csv/590.csv
    answers: list[str]


def split_file(root: Path, split: str) -> Path:
    """``train``/``test``/``dev`` or any ``data/<name>.tsv`` of the release."""
    path = root / "data" / f"{SPLITS.get(split, split)}.tsv"
    if not path.is_file():
        known = sorted(SPLITS) + sorted(p.stem for p in (root / "data").glob("*.tsv"))
        raise DataError(f"no split {split!r} in {root}: {path} is missing (known: {known})")
    return path


def read_questions(path: Path) -> list[Question]:
    """Every line of a question TSV; a malformed line is an error naming file and line."""
    with open(path, encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    header = lines[0].rstrip("\r").split("\t")
    if header != QUESTION_COLUMNS:
        raise DataError(f"{path}: line 1: expected columns {QUESTION_COLUMNS}, got {header}")
    questions = []
    for no, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 4 or not fields[0] or not fields[2]:
            raise DataError(f"{path}: line {no}: expected 4 tab-separated fields, got {fields!r}")
        ex_id, utterance, context, target = fields
        questions.append(
            Question(ex_id, tsv_unescape(utterance), context, tsv_unescape_list(target))
        )
    return questions


def sample(questions: list[Question], limit: int | None, seed: int) -> list[Question]:
    """A seeded sample (by a stable digest of seed and id), kept in file order."""
    if limit is None or limit >= len(questions):
        return list(questions)
    chosen = {q.id for q in sorted(questions, key=lambda q: digest("sample", seed, q.id))[:limit]}
    return [q for q in questions if q.id in chosen]


def read_raw_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one release CSV (backslash escapes, quoted line breaks)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, escapechar="\\", doublequote=False, strict=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read table: {exc}") from exc
    if not rows:
        raise DataError(f"{path}: empty table file")
    header, body = rows[0], rows[1:]
    for no, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DataError(
                f"{path}: record {no}: {len(row)} cells under a header of {len(header)}"
            )
    return header, body


def column_names(header: list[str]) -> list[str]:
    """SQL-friendly, unique, lower-case names; ``row_id`` is reserved for the row number."""
    names: list[str] = []
    for i, raw in enumerate(header):
        ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
        name = re.sub(r"[^0-9a-z]+", "_", ascii_.lower()).strip("_") or f"col_{i + 1}"
        if name[0].isdigit():
            name = f"c_{name}"
        base, n = name, 2
        while name in names or name == "row_id":
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def read_table(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """The table as a frame with ``row_id`` (1-based, the page's order) and typed columns.

    Cells stay text unless every non-empty cell of the column reads as an integer (then BIGINT)
    or a number (DOUBLE); empty cells become null. Returns the frame and a map from each column
    name to the original header text.
    """
    header, body = read_raw_table(path)
    names = column_names(header)
    frame = pl.DataFrame(
        {n: [row[i] for row in body] for i, n in enumerate(names)},
        schema=dict.fromkeys(names, pl.String),
    )
    typed = []
    for n in names:
        col = pl.col(n).str.strip_chars()
        col = pl.when(col == "").then(None).otherwise(pl.col(n)).alias(n)
        typed.append(col)
    frame = frame.with_columns(typed)
    casts = []
    for n in names:
        values = frame.get_column(n).drop_nulls().str.strip_chars()
        if values.len() == 0:
            continue
        for dtype in (pl.Int64, pl.Float64):
            if values.cast(dtype, strict=False).null_count() == 0:
                casts.append(pl.col(n).str.strip_chars().cast(dtype))
                break
    frame = frame.with_columns(casts).with_row_index("row_id", offset=1)
    frame = frame.with_columns(pl.col("row_id").cast(pl.Int64))
    originals = {n: " ".join(h.split()) for n, h in zip(names, header, strict=True)}
    return frame, originals


def copy_sample(src: Path, dst: Path, per_split: dict[str, int], seed: int = 0) -> dict[str, int]:
    """Write a seeded sample of the release (questions and their tables) in the same layout."""
    written = {}
    for split, n in per_split.items():
        path = split_file(src, split)
        chosen = sample(read_questions(path), n, seed)
        out = dst / "data" / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        wanted = {q.id for q in chosen}
        with open(path, encoding="utf-8", newline="") as fh:
            lines = fh.read().split("\n")
        kept = [lines[0]] + [ln for ln in lines[1:] if ln.split("\t", 1)[0] in wanted]
        out.write_text("\n".join(kept) + "\n", encoding="utf-8")
        for q in chosen:
            target = dst / q.context
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / q.context, target)
        written[split] = len(chosen)
    return written
