"""Outcome labels from a side file, for runs whose source does not say how they ended.

Accepted files:

- CSV or Parquet with an id column, ``trajectory_id`` (our id or the run's native id) or
  ``task_id`` (alias ``instance_id``), and ``outcome`` (success / failure, pass / fail,
  true / false, ...; alias ``resolved``) and/or ``reward`` (a number; >= 1.0 is a success when
  there is no outcome column);
- a SWE-bench evaluation report (JSON): a summary with ``resolved_ids`` (and
  ``unresolved_ids`` / ``error_ids`` / ``completed_ids``), or per-instance results
  ``{instance_id: {"resolved": bool, ...}}``; matched on ``task_id``.

A run is matched by trajectory id first, then native id, then task id. Rows that cannot be read,
and ids labelled twice with different outcomes, become ``BadRecord``s naming the row; the other
rows are used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.errors import UserError
from pipeline.ingest.record import (
    FAILURE_WORDS,
    SUCCESS_REWARD,
    SUCCESS_WORDS,
    UNKNOWN_WORDS,
    BadRecord,
)

Label = tuple[str, float | None]  # (outcome, reward)


class LabelsError(UserError, ValueError):
    """The labels file as a whole cannot be used."""


@dataclass
class Labels:
    file: str
    sha256: str
    by_id: dict[str, Label] = field(default_factory=dict)
    by_task: dict[str, Label] = field(default_factory=dict)
    errors: list[BadRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.by_id) + len(self.by_task)

    def lookup(
        self, trajectory_id: str, native_id: str | None, task_id: str | None
    ) -> Label | None:
        for key, table in (
            (trajectory_id, self.by_id),
            (native_id, self.by_id),
            (task_id, self.by_task),
        ):
            if key is not None and key in table:
                return table[key]
        return None


def load_labels(path: str | Path) -> Labels:
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"labels file {path} does not exist")
    data = path.read_bytes()
    labels = Labels(str(path), hashlib.sha256(data).hexdigest())
    suffix = path.suffix.lower()
    try:
        first_row = 1
        if suffix == ".parquet" or data[:4] == b"PAR1":
            df = pl.read_parquet(path)
        elif suffix == ".json":
            df = _swe_bench_report(json.loads(data.decode("utf-8")), path)
        else:
            df = pl.read_csv(path, infer_schema=False, encoding="utf8")
            first_row = 2  # rows are named by their line in the file, after the header
    except LabelsError:
        raise
    except Exception as exc:  # polars and json raise many types for a bad file
        raise LabelsError(f"labels file {path} cannot be read: {exc}") from None
    _fill(labels, df, first_row)
    return labels


def _swe_bench_report(doc, path: Path) -> pl.DataFrame:
    if isinstance(doc, dict) and "resolved_ids" in doc:
        resolved = set(doc.get("resolved_ids") or [])
        others = set()
        for key in ("unresolved_ids", "error_ids", "completed_ids", "submitted_ids"):
            others |= set(doc.get(key) or [])
        ids = sorted(resolved | others)
        return pl.DataFrame(
            {"task_id": ids, "outcome": ["success" if i in resolved else "failure" for i in ids]}
        )
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        rows = [(k, v.get("resolved")) for k, v in sorted(doc.items()) if "resolved" in v]
        if rows:
            ids, resolved = zip(*rows, strict=True)
            return pl.DataFrame(
                {"task_id": list(ids), "outcome": [str(r).lower() for r in resolved]}
            )
    raise LabelsError(
        f"labels file {path}: JSON labels must be a SWE-bench report (resolved_ids, or "
        "{instance_id: {resolved: ...}}); use CSV or Parquet for other labels"
    )


def _fill(labels: Labels, df: pl.DataFrame, first_row: int) -> None:
    df = df.rename({c: c.strip().lower() for c in df.columns})
    if "instance_id" in df.columns and "task_id" not in df.columns:
        df = df.rename({"instance_id": "task_id"})
    if "resolved" in df.columns and "outcome" not in df.columns:
        df = df.rename({"resolved": "outcome"})
    id_cols = [c for c in ("trajectory_id", "native_id", "task_id") if c in df.columns]
    value_cols = [c for c in ("outcome", "reward") if c in df.columns]
    if not id_cols or not value_cols:
        raise LabelsError(
            f"labels file {labels.file} needs a trajectory_id or task_id column and an outcome "
            f"or reward column; it has {df.columns}"
        )
    outcome_map = {v: "success" for v in SUCCESS_WORDS} | {v: "failure" for v in FAILURE_WORDS}
    exprs = [(pl.int_range(pl.len()) + first_row).alias("row")]
    for c in id_cols:
        exprs.append(pl.col(c).cast(pl.String).str.strip_chars().alias(c))
    if "outcome" in value_cols:
        raw = pl.col("outcome").cast(pl.String).str.strip_chars().str.to_lowercase()
        exprs += [
            raw.alias("outcome_raw"),
            raw.replace_strict(outcome_map, default=None).alias("outcome"),
        ]
    if "reward" in value_cols:
        exprs += [
            pl.col("reward").cast(pl.String).alias("reward_raw"),
            pl.col("reward")
            .cast(pl.String)
            .str.strip_chars()
            .cast(pl.Float64, strict=False)
            .alias("reward"),
        ]
    df = df.select(exprs)
    if "outcome" not in df.columns:
        df = df.with_columns(
            outcome=pl.when(pl.col("reward") >= SUCCESS_REWARD).then(pl.lit("success"))
            .when(pl.col("reward").is_not_null()).then(pl.lit("failure"))
        )  # fmt: skip
    if "reward" not in df.columns:
        df = df.with_columns(reward=pl.lit(None, dtype=pl.Float64))
    unknown = sorted(UNKNOWN_WORDS)
    bad_outcome = (
        pl.col("outcome").is_null() & pl.col("outcome_raw").is_not_null()
        & ~pl.col("outcome_raw").is_in(unknown)
        if "outcome_raw" in df.columns else pl.lit(False)
    )  # fmt: skip
    bad_reward = (
        pl.col("reward").is_null() & pl.col("reward_raw").is_not_null()
        & (pl.col("reward_raw").str.strip_chars() != "")
        if "reward_raw" in df.columns else pl.lit(False)
    )  # fmt: skip
    no_id = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c) == "") for c in id_cols)
    df = df.with_columns(problem=pl.when(no_id).then(pl.lit("no id"))
        .when(bad_outcome).then(pl.lit("outcome is not success/failure"))
        .when(bad_reward).then(pl.lit("reward is not a number"))
        .when(~pl.col("reward").is_finite()).then(pl.lit("reward is not a finite number")))  # fmt: skip
    for row, problem in df.filter(pl.col("problem").is_not_null()).select("row", "problem").rows():
        labels.errors.append(BadRecord(f"row {row}", f"label {problem}"))
    good = df.filter(pl.col("problem").is_null() & pl.col("outcome").is_not_null())
    for col, table in (
        ("trajectory_id", labels.by_id),
        ("native_id", labels.by_id),
        ("task_id", labels.by_task),
    ):
        if col not in good.columns:
            continue
        keyed = good.filter(pl.col(col).is_not_null() & (pl.col(col) != ""))
        conflicts = (
            keyed.group_by(col).agg(pl.col("outcome").n_unique().alias("n"), pl.col("row").min())
            .filter(pl.col("n") > 1).sort("row")
        )  # fmt: skip
        for key, row in conflicts.select(col, "row").rows():
            labels.errors.append(
                BadRecord(f"row {row}", f"{col} {key!r} is labelled both success and failure")
            )
        bad_keys = set(conflicts.get_column(col).to_list())
        for key, outcome, reward in keyed.select(col, "outcome", "reward").rows():
            if key not in bad_keys:
                table[key] = (outcome, reward)
