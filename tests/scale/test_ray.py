"""The analyse map on Ray Data, on a local Ray instance of two CPUs started once for the module.

The miner on Ray writes exactly the lessons (ids included) and the part names of the local map,
on a local lake and on an S3 lake; the cache is shared between engines; failures become error
rows; workers that wait on HTTP ask for a fraction of a CPU, so more of them run than there are
CPUs. `make test` installs the ray extra and CI sets T2S_REQUIRE_RAY=1, so there this module
cannot skip.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.analyse.run import AnalyseError, analyse
from pipeline.cli import main
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from tests.conftest import DATA
from tests.loopback import Loopback

if os.environ.get("T2S_REQUIRE_RAY"):  # CI: the extra is installed, so never skip
    import ray
else:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from tests.analyse import scripted  # noqa: E402
from tests.scale import analysts  # noqa: E402

pytestmark = [
    pytest.mark.ray,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),  # Ray's own settings
]

DEMO = [
    DATA / "tau-bench-airline" / "gpt-4o-airline.json",
    DATA / "reflexion-hotpotqa" / "100_questions_5_trials.txt",
]
SKILL = DATA / "tau-bench-airline" / "base-skill"
BATCH = 64  # several batches per source, so every actor gets some


@pytest.fixture(scope="module")
def ray_instance():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # no token written to the home folder
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.cloudpickle.register_pickle_by_value(analysts)
        yield ray
        ray.cloudpickle.unregister_pickle_by_value(analysts)
        ray.shutdown()


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> Path:
    """The demo subset, ingested once; tests analyse copies of it."""
    root = tmp_path_factory.mktemp("seed") / "lake"
    ingest_paths(Lake(root), DEMO)
    return root


@pytest.fixture(scope="module")
def reference(seed, tmp_path_factory) -> Lake:
    """The local map's result on the demo subset."""
    lake = copy(seed, tmp_path_factory.mktemp("reference"))
    summary = analyse(lake, base_skill=SKILL, batch_size=BATCH)
    assert summary.n_failed == 0 and summary.n_lessons > 500
    return lake


def copy(seed: Path, where: Path) -> Lake:
    shutil.copytree(seed, where / "lake")
    return Lake(where / "lake")


def lessons(lake: Lake) -> pl.DataFrame:
    return lake.read("lessons").drop("created_at").sort("lesson_id")


def analyses(lake: Lake) -> pl.DataFrame:
    return lake.read("analyses").drop("started_at", "finished_at").sort("analysis_id")


def part_names(lake: Lake, table: str) -> list[str]:
    return sorted(p.rsplit("/", 1)[1] for p in lake.parts(table))


def test_the_miner_on_ray_writes_the_lessons_of_the_local_map(
    ray_instance, seed, reference, tmp_path
):
    lake = copy(seed, tmp_path)
    summary = analyse(lake, base_skill=SKILL, batch_size=BATCH, engine="ray")
    n = lake.read("trajectories").height
    assert (summary.n_selected, summary.n_analysed, summary.n_failed) == (n, n, 0)
    assert summary.n_lessons == lessons(reference).height
    assert lessons(lake).equals(lessons(reference))
    assert analyses(lake).equals(analyses(reference))
    for table in ("lessons", "analyses"):
        assert part_names(lake, table) == part_names(reference, table)
    assert len(part_names(lake, "analyses")) > 4

    # One cache for both engines: neither redoes what the other did.
    assert analyse(lake, base_skill=SKILL, batch_size=BATCH).n_analysed == 0
    assert analyse(lake, base_skill=SKILL, batch_size=BATCH, engine="ray").n_analysed == 0


def test_the_cli_runs_the_miner_on_ray_over_an_s3_lake(ray_instance, s3, reference):
    lake = s3.lake("ray")
    ingest_paths(lake, DEMO)
    r = CliRunner().invoke(
        main,
        ["analyse", "--lake", lake.uri, "--base-skill", str(SKILL), "--engine", "ray",
         "--batch-size", str(BATCH), "--workers", "2"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert lessons(lake).equals(lessons(reference))
    assert part_names(lake, "analyses") == part_names(reference, "analyses")


def test_failures_on_ray_are_error_rows(ray_instance, seed, tmp_path):
    lake = copy(seed, tmp_path)
    bad = set(lake.read("trajectories").sort("trajectory_id")["trajectory_id"].head(3))
    summary = analyse(lake, analyst=analysts.Failing(bad), batch_size=BATCH, engine="ray")
    assert summary.n_failed == 3 and sorted(t for t, _ in summary.errors) == sorted(bad)
    assert all("ValueError: cannot read" in reason for _, reason in summary.errors)
    rows = lake.read("analyses").filter(pl.col("status") == "error")
    assert sorted(rows["trajectory_id"]) == sorted(bad)
    assert lake.read("lessons").filter(pl.col("trajectory_id").is_in(bad)).height == 0


def test_a_broken_analyst_stops_the_map_with_its_error(ray_instance, seed, tmp_path):
    lake = copy(seed, tmp_path)
    with pytest.raises(AnalyseError, match="RuntimeError: broken analyst.*next run resumes"):
        analyse(lake, analyst=analysts.Broken(), batch_size=BATCH, engine="ray")
    assert lake.parts("analyses") == []


def test_http_bound_workers_take_a_fraction_of_a_cpu(ray_instance, seed, tmp_path):
    """Three actors on two CPUs: each asks for a quarter CPU, so all three run at once."""
    lake = copy(seed, tmp_path)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(request: dict):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return None  # the default answer

    with Loopback(responder=slow) as server:
        summary = analyse(
            lake,
            analyst=analysts.Asking(server.url),
            where="source = 'tau-bench-airline'",
            limit=24,
            batch_size=2,
            workers=3,
            engine="ray",
        )
        asked = len(server.chat_requests)
    assert (summary.n_analysed, summary.n_failed, summary.usage.n_calls, asked) == (24, 0, 24, 24)
    assert summary.usage.tokens_in > 0
    processes = set(lake.read("lessons")["title"])
    assert len(processes) == 3, processes  # three actors did the work
    assert peak[0] >= 3  # and more of them waited on the server at once than there are CPUs


def test_the_single_analyst_on_ray_answers_as_the_local_map(ray_instance, tmp_path):
    """A model analyst: each actor opens its own client and logs its calls in the lake."""
    one, two = (scripted.small_lake(Lake(tmp_path / name)) for name in ("one", "two"))
    with Loopback(responder=scripted.answer) as server:
        settings = server.settings(concurrency=4, prices={"loopback-model": (1.0, 2.0)})
        here = analyse(one, settings=settings, batch_size=4)
        there = analyse(two, settings=settings, batch_size=4, workers=3, engine="ray")
        assert len(server.chat_requests) == 2 * here.n_analysed
    n = one.read("trajectories").height
    assert (there.analyst, there.n_analysed, there.n_failed) == ("single", n, 0)
    assert there.usage.cost_usd == pytest.approx(here.usage.cost_usd) and here.usage.cost_usd > 0
    there.usage.cost_usd = here.usage.cost_usd  # summed in another order
    assert there.usage == here.usage
    assert lessons(two).equals(lessons(one)) and lessons(one).height == n
    timing = ["started_at", "finished_at"]
    assert (
        two.read("analyses")
        .drop(timing)
        .sort("analysis_id")
        .equals(one.read("analyses").drop(timing).sort("analysis_id"))
    )
    calls = two.read("llm_calls")
    assert calls.height == n and not calls["cache_hit"].any() and calls["error"].is_null().all()


def test_a_model_budget_is_shared_between_actors(ray_instance, tmp_path):
    lake = scripted.small_lake(Lake(tmp_path / "lake"))
    with Loopback(responder=scripted.answer) as server:
        probe = analyse(
            scripted.small_lake(Lake(tmp_path / "probe")),
            settings=server.settings(concurrency=1),
            limit=1,
        )
        per_call = probe.usage.tokens_in + probe.usage.tokens_out
        budget = 6 * per_call
        settings = server.settings(concurrency=2, token_budget=budget)
        first = analyse(lake, settings=settings, batch_size=2, workers=2, engine="ray")
        spent = first.usage.tokens_in + first.usage.tokens_out
        assert first.stopped and "budget is spent" in first.stopped
        # Two actors, a half of the budget each, one request in flight each when it ran out.
        assert spent <= budget + 2 * 2 * per_call
        assert first.n_left + first.n_failed > 0
        rest = analyse(lake, settings=server.settings(concurrency=2), batch_size=2)
    n = lake.read("trajectories").height
    done = lake.read("analyses")
    assert rest.stopped is None and (done["status"] == "ok").sum() == n


def test_engine_options_are_checked(ray_instance, tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake")
    with pytest.raises(AnalyseError, match="unknown engine 'spark'"):
        analyse(lake, engine="spark")
    r = CliRunner().invoke(main, ["analyse", "--lake", lake.uri, "--ray-address", "auto"])
    assert r.exit_code == 1 and "--ray-address applies to --engine ray only" in r.output
    import socket

    lake = scripted.small_lake(lake)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AnalyseError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        analyse(lake, engine="ray", ray_address=f"127.0.0.1:{port}")
    assert lake.parts("analyses") == []
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    r = CliRunner().invoke(main, ["analyse", "--lake", lake.uri, "--engine", "ray"])
    assert r.exit_code == 1 and "pip install 'trace2skill[ray]'" in r.output
