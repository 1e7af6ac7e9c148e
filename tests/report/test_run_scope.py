"""run_trajectories: the runs each consolidation was built from, from the --where it recorded."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import duckdb
import polars as pl
import pytest

from pipeline.lake import Lake
from pipeline.report.coverage import coverage
from pipeline.report.views import build_warehouse, connect_views, run_where

from . import fixture

AIRLINE = {"T1", "T2", "T3", "T6"}
RETAIL = {"T4", "T5", "T7", "T8"}


def add_run(lake: Lake, run_id: str, where: str | None, *, reads: list[str], days: int) -> None:
    """A consolidation row with this --where that read `reads` (as singleton clusters)."""
    lake.write_part(
        "consolidations",
        fixture.frame(
            "consolidations",
            [
                {
                    "run_id": run_id,
                    "mode": "parallel",
                    "model": "offline",
                    "settings": json.dumps({"where": where, "fan_in": 5}),
                    "out_dir": f"/nowhere/{run_id}",
                    "lint_ok": True,
                    "created_at": fixture.T0 + dt.timedelta(days=days),
                }
            ],
        ),
        part="0",
        partition={"run_id": run_id},
    )
    lake.write_part(
        "cluster_members",
        fixture.frame(
            "cluster_members",
            [
                {
                    "run_id": run_id,
                    "lesson_id": lid,
                    "cluster_id": f"C-{lid}",
                    "stage": "singleton",
                    "representative_lesson_id": lid,
                    "similarity": 1.0,
                }
                for lid in reads
            ],
        ),
        part="0",
        partition={"run_id": run_id},
    )


@pytest.fixture(scope="module")
def scoped_lake(fixture_lake, tmp_path_factory) -> Lake:
    """The fixture lake plus a run with a --where on runs and one with a --where on lessons."""
    lake = Lake(tmp_path_factory.mktemp("scope") / "lake")
    shutil.copytree(fixture_lake.base, lake.base)
    add_run(lake, "r-retail", "source = 'retail'", reads=["L4a", "L7a"], days=3)
    add_run(lake, "r-kind", "kind = 'failure_lesson'", reads=["L1a", "L3a"], days=4)
    return lake


def scope_of(con, run_id: str) -> tuple[set[str], set[str]]:
    rows = con.sql(
        "select trajectory_id, scope from run_trajectories where run_id = $r", params={"r": run_id}
    ).fetchall()
    return {t for t, _ in rows}, {s for _, s in rows}


def test_each_run_counts_what_its_where_selected(scoped_lake):
    con = connect_views(scoped_lake)
    everything = {t[0] for t in fixture.TRAJECTORIES}
    assert scope_of(con, "r1") == (everything, {"lake"})  # no --where: the whole lake
    assert scope_of(con, "r-retail") == (RETAIL, {"where"})
    # a --where on lesson columns: every run of the sources it read
    assert scope_of(con, "r-kind") == (AIRLINE, {"sources"})
    latest = {t for (t,) in con.sql("select trajectory_id from latest_run_trajectories").fetchall()}
    assert latest == AIRLINE
    con.close()


def test_coverage_counts_the_scope_only(scoped_lake):
    cov = coverage(scoped_lake, run_id="r-retail")
    assert set(cov.trajectories["trajectory_id"]) == RETAIL
    scope = cov.settings["scope"]
    assert (scope["kind"], scope["where"], scope["n_trajectories"], scope["n_lake"]) == (
        "where",
        "source = 'retail'",
        4,
        11,
    )


def test_a_run_newer_than_the_warehouse_counts_the_whole_lake(scoped_lake, tmp_path):
    lake = Lake(tmp_path / "lake")
    shutil.copytree(scoped_lake.base, lake.base)
    path = build_warehouse(lake, tmp_path / "w.duckdb")
    add_run(lake, "r-new", "source = 'airline'", reads=["L1a"], days=5)
    wh = duckdb.connect(str(path), read_only=True)
    assert scope_of(wh, "r-retail") == (RETAIL, {"where"})
    trajectories, kinds = scope_of(wh, "r-new")
    assert kinds == {"lake"} and len(trajectories) == len(fixture.TRAJECTORIES)
    wh.close()
    live = connect_views(lake)  # a fresh connection knows its --where
    assert scope_of(live, "r-new") == (AIRLINE, {"where"})
    live.close()


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ('{"where": "source = \'x\'"}', "source = 'x'"),
        ('{"where": null}', None),
        ('{"where": "  "}', None),
        ("not json", None),
        (None, None),
        ("[1, 2]", None),
    ],
)
def test_run_where_reads_the_settings(settings, where):
    assert run_where(settings) == where


def test_a_consolidation_records_its_scope_and_keeps_it(tmp_path):
    """Runs ingested after a consolidation do not join its scope, though its --where selects
    them: the scope was recorded when it ran."""
    from pipeline.analyse.run import analyse
    from pipeline.console import Console
    from pipeline.consolidate.run import consolidate
    from pipeline.ingest.run import ingest_paths
    from tests.conftest import DATA

    records = json.loads((DATA / "tau-bench-airline" / "gpt-4o-airline.json").read_text())
    halves = [tmp_path / "a.json", tmp_path / "b.json"]
    halves[0].write_text(json.dumps(records[:30]))
    halves[1].write_text(json.dumps(records[30:60]))
    lake, console = Lake(tmp_path / "lake"), Console(0)
    ingest_paths(lake, [halves[0]], source="airline", console=console)
    analyse(lake, console=console)
    where = "source = 'airline' and outcome = 'failure'"
    run = consolidate(
        lake, where=where, min_support=1, out_dir=tmp_path / "s" / "x", console=console
    )
    failed = set(lake.read("trajectories").filter(pl.col("outcome") == "failure")["trajectory_id"])
    recorded = lake.read("consolidation_scope")
    assert set(recorded["trajectory_id"]) == failed and set(recorded["scope"]) == {"where"}

    ingest_paths(lake, [halves[1]], source="airline", console=console)
    con = connect_views(lake)
    assert scope_of(con, run.run_id) == (failed, {"where"})  # not the new failures
    con.close()
