"""Native Parquet: our own tables (steps + trajectories beside them) and plain steps-like files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest.run import EXIT_NOTHING, EXIT_OK, ingest_paths
from pipeline.lake import Lake
from tests.conftest import DATA

TAU = DATA / "tau-bench-airline" / "gpt-4o-airline.json"


def test_exported_tables_ingest_to_the_same_ids(tmp_path: Path):
    first = Lake(tmp_path / "first")
    ingest_paths(first, [TAU])
    out = tmp_path / "export"
    out.mkdir()
    first.read("steps").drop("source").write_parquet(out / "steps.parquet")
    first.read("trajectories").drop("source").write_parquet(out / "trajectories.parquet")
    second = Lake(tmp_path / "second")
    summary = ingest_paths(second, [out], source="tau-bench-airline")
    assert summary.exit_code == EXIT_OK
    assert [(Path(f.file).name, f.status) for f in summary.files] == [
        ("steps.parquet", "ingested"), ("trajectories.parquet", "ignored")
    ]  # fmt: skip
    assert "trajectories table of steps.parquet" in summary.ignored[0].error
    cols = [
        "trajectory_id",
        "native_id",
        "task_id",
        "model",
        "outcome",
        "reward",
        "n_steps",
        "meta",
    ]
    a = first.read("trajectories").select(cols).sort("trajectory_id")
    b = second.read("trajectories").select(cols).sort("trajectory_id")
    assert a.equals(b)  # ids, outcomes and grader meta survive the round trip
    key = ["trajectory_id", "step_idx"]
    keep = pl.exclude("source")
    assert (
        first.read("steps")
        .select(keep)
        .sort(key)
        .equals(second.read("steps").select(keep).sort(key))
    )


def test_a_changed_companion_rereads_the_steps_file(tmp_path: Path):
    out = tmp_path / "in"
    out.mkdir()
    steps = pl.DataFrame({
        "trajectory_id": ["a", "a", "b"], "role": ["user", "assistant", "user"],
        "content": ["hi", "hello", "yo"],
    })  # fmt: skip
    steps.write_parquet(out / "steps.parquet")
    pl.DataFrame({"trajectory_id": ["a"], "outcome": ["success"]}).write_parquet(
        out / "trajectories.parquet"
    )
    lake = Lake(tmp_path / "lake")
    ingest_paths(lake, [out / "steps.parquet"])
    assert sorted(lake.read("trajectories")["outcome"]) == ["success", "unknown"]
    pl.DataFrame({"trajectory_id": ["a", "b"], "outcome": ["success", "failure"]}).write_parquet(
        out / "trajectories.parquet"
    )
    summary = ingest_paths(lake, [out / "steps.parquet"])
    assert summary.files[0].status == "replaced"
    assert sorted(lake.read("trajectories")["outcome"]) == ["failure", "success"]


def test_minimal_steps_file_with_run_columns(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.parquet"
    pl.DataFrame({
        "trajectory_id": ["x", "x", "x", "x"],
        "step_idx": [3, 0, 1, 2],
        "role": ["assistant", "user", "assistant", "tool"],
        "content": ["done", "book it", None, "Error: no seats"],
        "tool_name": [None, None, "book", "book"],
        "tool_args": [None, None, '{"seat": "1A"}', None],
        "task_id": ["t1"] * 4, "model": ["m"] * 4, "reward": [0.0] * 4,
    }).write_parquet(path)  # fmt: skip
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_OK
    t = lake.read("trajectories")
    assert t.select("native_id", "task_id", "model", "outcome").row(0) == (
        "x",
        "t1",
        "m",
        "failure",
    )
    s = lake.read("steps").sort("step_idx")
    assert s["kind"].to_list() == ["message", "tool_call", "tool_result", "message"]
    assert s["content"].to_list()[0] == "book it"  # ordered by step_idx
    assert s["call_step_idx"].to_list()[2] == 1 and s["is_error"].to_list()[2]


def test_a_trajectories_table_alone_is_an_error(lake: Lake, tmp_path: Path):
    path = tmp_path / "trajectories.parquet"
    pl.DataFrame({"trajectory_id": ["a"], "outcome": ["success"]}).write_parquet(path)
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_NOTHING
    assert "without its steps" in summary.errors[0].error
