"""The Ray map's plan (no Ray needed): the local map's batches, and for each the parts holding
every row of its trajectories, wherever the lake put them."""

from __future__ import annotations

import polars as pl

from pipeline.analyse.ray_engine import _root_cause, plan
from pipeline.lake import Lake
from tests.analyse import builders, domains


def test_batches_and_their_parts(tmp_path):
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.shop_runs(), part="a")
    builders.write(lake, domains.qa_runs(), part="b")
    # Steps of one run in a second part (a later write of the same source): the plan finds both.
    steps = lake.read("steps")
    tid = steps["trajectory_id"].sort()[0]
    later = steps.filter(pl.col("trajectory_id") == tid).with_columns(
        pl.col("step_idx") + 1000, pl.col("message_idx") + 1000
    )
    source = later["source"][0]
    lake.write_part("steps", later, part="later", partition={"source": source})

    todo = lake.read("trajectories").select("trajectory_id", "source").sample(fraction=1.0, seed=3)
    got = plan(lake, todo, size=4)

    ids = sorted(todo["trajectory_id"])
    assert got["batch"].to_list() == list(range(len(got)))
    assert got["trajectory_ids"].to_list() == [ids[i : i + 4] for i in range(0, len(ids), 4)]
    everything = {t: lake.read(t) for t in ("trajectories", "steps")}
    for row in got.iter_rows(named=True):
        keep = pl.col("trajectory_id").is_in(row["trajectory_ids"])
        for table, files in (
            ("trajectories", row["trajectory_files"]),
            ("steps", row["step_files"]),
        ):
            assert files == sorted(set(files)) and all(f in lake.parts(table) for f in files)
            read = lake.scan(table, files).filter(keep).collect()
            want = everything[table].filter(keep)
            key = ["trajectory_id", "step_idx"] if table == "steps" else ["trajectory_id"]
            assert read.sort(key).equals(want.sort(key)), (table, row["batch"])
    first = got.row(0, named=True)
    assert tid in first["trajectory_ids"] and any("part-later" in f for f in first["step_files"])


def test_a_run_without_steps_plans_no_steps_file(tmp_path):
    lake = Lake(tmp_path / "lake")
    builders.write(lake, domains.qa_runs()[:2])
    traj = lake.read("trajectories")
    lonely = traj.head(1).with_columns(pl.lit("zz-no-steps").alias("trajectory_id"))
    lake.write_part(
        "trajectories", lonely, part="lonely", partition={"source": lonely["source"][0]}
    )
    got = plan(lake, lake.read("trajectories").select("trajectory_id", "source"), size=1)
    last = got.row(-1, named=True)
    assert last["trajectory_ids"] == ["zz-no-steps"] and last["step_files"] == []
    assert len(last["trajectory_files"]) == 1 and "part-lonely" in last["trajectory_files"][0]


def test_the_root_cause_of_a_worker_error():
    text = (
        "ray::MapWorker(MapBatches(_AnalyseBatches)).submit() (pid=1)\n"
        '  File "x.py", line 3, in one\n'
        "TableError: table lessons: analyst: isin(['miner']) (got 'x')\n"
        "\nThe above exception was the direct cause of the following exception:\n"
        "ray.exceptions.UserCodeException: UDF failed to process a data block.\n"
    )
    assert (
        _root_cause(RuntimeError(text))
        == "TableError: table lessons: analyst: isin(['miner']) (got 'x')"
    )
    assert _root_cause(RuntimeError("UDF failed\nmore")) == "UDF failed"
