"""Outcomes from a labels file, for runs whose source does not say how they ended."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.labels import LabelsError, load_labels
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, IngestError, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"


def outcomes(lake: Lake) -> dict[str, tuple[str, str]]:
    t = lake.read("trajectories")
    return {n: (o, g) for n, o, g in t.select("native_id", "outcome", "outcome_origin").rows()}


def test_csv_labels_by_task_and_native_id(lake: Lake, tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text("task_id,trajectory_id,outcome\ntrack-7,,pass\n,run-1,failure\n")
    summary = ingest_paths(lake, [FIXTURES / "chat.jsonl"], labels=labels)
    assert summary.exit_code == EXIT_OK
    got = outcomes(lake)
    assert got["run-3"] == ("success", "labels")  # by task_id
    assert got["run-1"] == ("success", "source")  # the source's own reward wins
    assert got["run-2"] == ("failure", "source")
    assert summary.files[0].n_labelled == 1


def test_parquet_labels_by_our_id_with_rewards(lake: Lake, tmp_path: Path):
    ingest_paths(lake, [FIXTURES / "claude-session.jsonl"])
    tid = lake.read("trajectories")["trajectory_id"][0]
    labels = tmp_path / "labels.parquet"
    pl.DataFrame({"trajectory_id": [tid], "reward": [0.25]}).write_parquet(labels)
    summary = ingest_paths(lake, [FIXTURES / "claude-session.jsonl"], labels=labels)
    assert summary.files[0].status == "replaced"  # new labels: the file is read again
    t = lake.read("trajectories")
    assert t.select("outcome", "outcome_origin", "reward").row(0) == ("failure", "labels", 0.25)


def test_swe_bench_report_labels(lake: Lake, tmp_path: Path):
    report = tmp_path / "report.json"
    report.write_text(
        json.dumps({"resolved_ids": ["acme__csv-12"], "unresolved_ids": ["acme__dates-7"]})
    )
    for name in ("acme__csv-12.traj", "acme__dates-7.traj.json", "acme__text-101.traj.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    ingest_paths(lake, [tmp_path], labels=report)
    got = outcomes(lake)
    assert got["acme__csv-12"] == ("success", "labels")
    assert got["acme__dates-7"] == ("failure", "labels")
    assert got["acme__text-101"] == ("unknown", "none")
    per_instance = tmp_path / "instance.json"
    per_instance.write_text(json.dumps({"acme__text-101": {"resolved": True, "tests_status": {}}}))
    assert load_labels(per_instance).by_task == {"acme__text-101": ("success", None)}


def test_bad_label_rows_are_reported_and_the_rest_used(lake: Lake, tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "task_id,outcome,reward\ntrack-7,maybe,\nrefund-42,success,\n,failure,\n"
        "track-7,success,\nx,success,\nx,failure,\ny,,lots\n"
    )
    summary = ingest_paths(lake, [FIXTURES / "chat.jsonl"], labels=labels)
    assert summary.exit_code == EXIT_PARTIAL
    rows = {(e.record, e.error) for e in summary.errors}
    assert ("row 2", "label outcome is not success/failure") in rows
    assert ("row 4", "label no id") in rows
    assert ("row 8", "label reward is not a number") in rows
    assert any(r == "row 6" and "both success and failure" in e for r, e in rows)
    assert outcomes(lake)["run-3"] == ("success", "labels")  # row 5 still applies
    e = lake.read("ingest_errors")
    assert set(e["file"]) == {str(labels)} and e.height == 4


def test_unusable_labels_file_stops_before_reading(lake: Lake, tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text("name,score\na,1\n")
    with pytest.raises(IngestError, match="trajectory_id or task_id"):
        ingest_paths(lake, [FIXTURES / "chat.jsonl"], labels=labels)
    with pytest.raises(LabelsError, match="does not exist"):
        load_labels(tmp_path / "missing.csv")
    assert not lake.exists("trajectories")
