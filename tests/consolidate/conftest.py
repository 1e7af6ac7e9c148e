"""Tiny hand-made lakes for consolidation tests: lessons written with their trajectories."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipeline import schemas
from pipeline.ids import digest
from pipeline.lake import Lake

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def runs_frame(runs: dict[str, tuple[str, str]], source: str = "fixture") -> pl.DataFrame:
    """runs: trajectory_id -> (task_id, outcome)."""
    ids = sorted(runs)
    return schemas.validate(
        "trajectories",
        pl.DataFrame(
            {
                "trajectory_id": ids,
                "source": source,
                "native_id": ids,
                "task_id": [runs[r][0] for r in ids],
                "model": "m1",
                "agent": "fixture",
                "outcome": [runs[r][1] for r in ids],
                "outcome_origin": "source",
                "reward": None,
                "n_steps": 3,
                "meta": "{}",
                "file": "f",
                "record": ids,
                "file_sha256": "0" * 64,
                "format": "fixture",
                "ingested_at": T0,
            }
        ).with_columns(pl.col("reward").cast(pl.Float64)),
    )


def lessons_frame(rows: list[dict]) -> pl.DataFrame:
    """rows: dicts with at least trajectory_id and title; the rest has defaults."""
    out = []
    for i, r in enumerate(rows):
        title = r["title"]
        out.append(
            {
                "lesson_id": r.get("lesson_id")
                or digest("fixture-lesson", i, title, r["trajectory_id"]),
                "analysis_id": digest("fixture-analysis", r["trajectory_id"]),
                "trajectory_id": r["trajectory_id"],
                "kind": r.get("kind", "failure_lesson"),
                "title": title,
                "description": None,
                "content": r.get("content", f"{title}. Seen in run {r['trajectory_id']}."),
                "target_section": r.get("section", "Book flight"),
                "op": r.get("op", "add"),
                "evidence_steps": [1],
                "tool_name": r.get("tool_name", "book_reservation"),
                "rule": r.get("rule", "fixture"),
                "analyst": r.get("analyst", "miner"),
                "model": "offline",
                "prompt_version": "fixture-1",
                "confidence": r.get("confidence", 0.8),
                "created_at": T0 + dt.timedelta(seconds=i),
            }
        )
    return schemas.validate("lessons", pl.DataFrame(out))


def write_lake(
    lake: Lake, rows: list[dict], runs: dict[str, tuple[str, str]] | None = None
) -> pl.DataFrame:
    if runs is None:
        runs = {r["trajectory_id"]: ("task-" + r["trajectory_id"][-1], "failure") for r in rows}
    lake.write_part(
        "trajectories", runs_frame(runs), part="fixture", partition={"source": "fixture"}
    )
    lessons = lessons_frame(rows)
    lake.write_part("lessons", lessons, part="fixture")
    return lessons


@pytest.fixture
def fixture_rows() -> list[dict]:
    """Two recurring lessons, a paraphrase-free near duplicate, a conflict, and a one-off."""
    check = "Check the membership tier before calling book_reservation"
    return [
        *({"trajectory_id": f"r{i}", "title": check} for i in range(4)),
        {"trajectory_id": "r4", "title": check.upper() + " ."},  # exact once normalised
        {"trajectory_id": "r5", "title": check + " (step 12)"},  # near duplicate
        *(
            {
                "trajectory_id": f"r{i}",
                "title": "Pass cabin=economy to update_reservation_flights",
                "section": "Modify flight",
                "tool_name": "update_reservation_flights",
            }
            for i in (1, 2, 3)
        ),
        *(
            {
                "trajectory_id": f"r{i}",
                "title": "Pass cabin=business to update_reservation_flights",
                "section": "Modify flight",
                "tool_name": "update_reservation_flights",
            }
            for i in (4, 5)
        ),
        *(
            {
                "trajectory_id": f"r{i}",
                "title": "Do not call book_reservation twice for one booking",
                "kind": "failure_cause",
            }
            for i in (6, 7)
        ),
        *(
            {
                "trajectory_id": f"r{i}",
                "title": "Call book_reservation twice for one booking",
                "kind": "workflow",
            }
            for i in (8, 9)
        ),
        {
            "trajectory_id": "r9",
            "title": "Offer a voucher for the lounge when asked",
            "section": "Refund",
        },
    ]
