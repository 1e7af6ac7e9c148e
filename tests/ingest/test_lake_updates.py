"""Re-ingest semantics: unchanged files skipped, changed files replaced, moves and duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.run import EXIT_OK, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"


def run(i: int, reply: str = "hello") -> str:
    return json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                                    {"role": "assistant", "content": reply}]})  # fmt: skip


def test_unchanged_file_is_skipped_without_parsing(lake: Lake, tmp_path: Path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n" + run(2) + "\n")
    first = ingest_paths(lake, [path])
    ids = lake.read("trajectories")["trajectory_id"].sort().to_list()
    from pipeline.ingest import reader

    def boom(*a, **k):
        raise AssertionError("an unchanged file must not be parsed")

    monkeypatch.setattr(reader, "build_frames", boom)
    again = ingest_paths(lake, [path])
    assert [f.status for f in again.files] == ["unchanged"]
    assert again.n_trajectories == first.n_trajectories == 2
    assert lake.read("trajectories")["trajectory_id"].sort().to_list() == ids
    log = lake.read("ingest_files").sort("ingested_at")
    assert log["status"].to_list() == ["ingested", "unchanged"]


def test_ids_are_content_hashes_stable_across_lakes(tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n")
    a, b = Lake(tmp_path / "a"), Lake(tmp_path / "b")
    ingest_paths(a, [path], source="s")
    ingest_paths(b, [path], source="s")
    assert (
        a.read("trajectories")["trajectory_id"].to_list()
        == b.read("trajectories")["trajectory_id"].to_list()
    )
    assert a.read("steps").drop("source").equals(b.read("steps").drop("source"))


def test_changed_file_replaces_its_rows(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n" + run(2) + "\n")
    ingest_paths(lake, [path])
    path.write_text(run(1) + "\n" + run(3, "changed") + "\n")
    summary = ingest_paths(lake, [path])
    assert summary.files[0].status == "replaced"
    t = lake.read("trajectories")
    assert t["native_id"].sort().to_list() == ["r1", "r3"]
    assert lake.read("steps").height == 4
    assert len(lake.parts("trajectories")) == len(lake.parts("steps")) == 1


def test_a_file_that_no_longer_yields_runs_loses_its_rows(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n")
    ingest_paths(lake, [path])
    path.write_text('{"id": "r1", "messages": []}\n')
    ingest_paths(lake, [path])
    assert lake.read("trajectories").height == 0 and lake.read("steps").height == 0


def test_moving_a_file_to_another_source_drops_its_old_parts(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n")
    ingest_paths(lake, [path], source="old")
    ingest_paths(lake, [path], source="new")
    t = lake.read("trajectories")
    assert t["source"].to_list() == ["new"]
    assert all("source=new" in p for p in lake.parts("trajectories") + lake.parts("steps"))


def test_a_copy_of_a_file_adds_no_duplicate_runs(lake: Lake, tmp_path: Path):
    (tmp_path / "a.jsonl").write_text(run(1) + "\n" + run(2) + "\n")
    (tmp_path / "b.jsonl").write_text(run(2) + "\n" + run(3) + "\n")
    summary = ingest_paths(lake, [tmp_path], source="s")
    assert summary.exit_code == EXIT_OK
    t = lake.read("trajectories")
    assert t["native_id"].sort().to_list() == ["r1", "r2", "r3"]
    assert t["trajectory_id"].is_unique().all()
    (dup,) = summary.duplicates
    assert dup.file.endswith("b.jsonl") and "a.jsonl" in dup.error
    # Re-ingesting b alone keeps the run where it is.
    ingest_paths(lake, [tmp_path / "b.jsonl"], source="s")
    assert lake.read("trajectories").height == 3


def test_duplicate_lines_within_a_file(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(run(1) + "\n" + run(1) + "\n")
    summary = ingest_paths(lake, [path])
    assert summary.files[0].n_duplicates == 1 and lake.read("trajectories").height == 1
    assert summary.duplicates[0].record == "line 2"


def test_the_lake_inside_a_walked_folder_is_skipped(tmp_path: Path):
    shutil.copy(FIXTURES / "chat.jsonl", tmp_path / "chat.jsonl")
    lake = Lake(tmp_path / "lake")
    ingest_paths(lake, [tmp_path])
    summary = ingest_paths(lake, [tmp_path])  # the lake's own Parquet parts are not inputs
    assert [f.file for f in summary.files] == [str(tmp_path / "chat.jsonl")]


def test_pool_and_in_process_reads_agree(tmp_path: Path, monkeypatch):
    from pipeline.ingest import run as run_module

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        (inputs / f"{i}.jsonl").write_text("\n".join(run(10 * i + j) for j in range(3)) + "\n")
    serial = Lake(tmp_path / "serial")
    ingest_paths(serial, [inputs], source="s", jobs=1)
    monkeypatch.setattr(run_module, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(run_module, "BATCH_FILES", 1)  # four units over two workers
    pooled = Lake(tmp_path / "pooled")
    summary = ingest_paths(pooled, [inputs], source="s", jobs=2)
    assert summary.n_trajectories == 12
    key = ["trajectory_id", "step_idx"]
    a = serial.read("steps").sort(key)
    b = pooled.read("steps").sort(key)
    assert a.equals(b)
    cols = pl.exclude("ingested_at")
    assert (
        serial.read("trajectories")
        .select(cols)
        .sort("trajectory_id")
        .equals(pooled.read("trajectories").select(cols).sort("trajectory_id"))
    )


def test_a_killed_ingest_resumes_after_the_last_batch_it_committed(tmp_path: Path, monkeypatch):
    """Each batch's ingest_files rows are its done-marker: the rerun reads only the rest."""
    from pipeline.ingest import run as run_module

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        (inputs / f"{i}.jsonl").write_text("\n".join(run(10 * i + j) for j in range(3)) + "\n")
    monkeypatch.setattr(run_module, "BATCH_FILES", 1)
    real = run_module.read_unit

    def killed_at_the_third(settings, unit):
        if unit.tasks[0].path.endswith("2.jsonl"):
            raise KeyboardInterrupt
        return real(settings, unit)

    monkeypatch.setattr(run_module, "read_unit", killed_at_the_third)
    lake = Lake(tmp_path / "lake")
    with pytest.raises(KeyboardInterrupt):
        ingest_paths(lake, [inputs], source="s", jobs=1)
    assert lake.read("trajectories").height == 6
    monkeypatch.setattr(run_module, "read_unit", real)
    summary = ingest_paths(lake, [inputs], source="s", jobs=1)
    status = {Path(f.file).name: f.status for f in summary.files}
    assert status == {
        "0.jsonl": "unchanged", "1.jsonl": "unchanged", "2.jsonl": "ingested", "3.jsonl": "ingested"
    }  # fmt: skip
    assert lake.read("trajectories").height == 12
