"""The command over the demo data, ingested for real: the lessons a reader would expect."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from tests.conftest import DATA

TAU = DATA / "tau-bench-airline" / "gpt-4o-airline.json"
REACT = DATA / "reflexion-hotpotqa" / "100_questions_5_trials.txt"
SKILL = DATA / "tau-bench-airline" / "base-skill"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Lake, str]:
    lake = Lake(tmp_path_factory.mktemp("demo") / "lake")
    ingest_paths(lake, [TAU, REACT])
    result = CliRunner().invoke(main, ["analyse", "--lake", lake.uri, "--base-skill", str(SKILL)])
    assert result.exit_code == 0, result.output
    return lake, result.output


def lessons_of(lake: Lake, native_id: str | None = None) -> pl.DataFrame:
    lessons = lake.read("lessons").join(
        lake.read("trajectories").select("trajectory_id", "source", "native_id", "outcome"),
        on="trajectory_id",
    )
    return lessons if native_id is None else lessons.filter(pl.col("native_id") == native_id)


def test_every_run_analysed_and_summarised(demo):
    lake, output = demo
    n = lake.read("trajectories").height
    done = lake.read("analyses")
    assert done.height == n and (done["status"] == "ok").all()
    assert f"trajectories selected                 │ {n}" in output
    assert "lessons by rule" in output and "gold_wrong_args" in output


def test_tau_wrong_arguments_cite_the_booking_call(demo):
    lake, _ = demo
    got = lessons_of(lake, "0-0").filter(pl.col("rule") == "gold_wrong_args")
    contents = " ".join(got["content"])
    assert "nonfree_baggages was 1 where the gold action has 0" in contents
    assert (
        "payment_methods[credit_card_4421486].amount was 55 where the gold action has 5" in contents
    )
    assert got["evidence_steps"].to_list() == [[28, 29], [28, 29]]
    assert set(got["target_section"]) == {"Book flight"}


def test_tau_lessons_target_the_policy_sections(demo):
    lake, _ = demo
    tau = lessons_of(lake).filter(pl.col("source") == "tau-bench-airline")
    by_tool = dict(
        tau.filter(pl.col("rule").str.starts_with("gold_"))
        .group_by("tool_name")
        .agg(pl.col("target_section").mode().first())
        .iter_rows()
    )
    assert by_tool["book_reservation"] == "Book flight"
    assert by_tool["cancel_reservation"] == "Cancel flight"
    assert by_tool["update_reservation_flights"] == "Modify flight"
    assert by_tool["send_certificate"] == "Refund"
    failed = lake.read("trajectories").filter(
        (pl.col("source") == "tau-bench-airline") & (pl.col("outcome") == "failure")
    )
    explained = tau.filter(pl.col("kind") == "failure_cause")["trajectory_id"].unique()
    assert failed.filter(pl.col("trajectory_id").is_in(explained.implode())).height >= 110


def test_hotpotqa_search_recovery_and_answers(demo):
    lake, _ = demo
    qa = lessons_of(lake).filter(pl.col("source") == "reflexion-hotpotqa")
    rec = qa.filter(
        (pl.col("rule") == "error_recovery")
        & pl.col("title").str.contains("value copied from the error's suggestions")
    )
    assert rec.height > 100
    assert (
        rec["content"]
        .str.contains(
            r"retried Search with a value copied from the error's suggestions: 12\d of 12\d went through"
        )
        .all()
    )
    kxii = qa.filter(pl.col("content").str.contains("answered 'KXII 12'"))
    assert kxii["rule"].to_list() == ["wrong_final_answer"]
    assert kxii["title"][0].startswith("Answer with the exact entity only")
    halted = qa.filter(pl.col("rule") == "no_final_call")
    assert (
        halted.height
        == lake.read("trajectories")
        .filter(pl.col("meta").str.json_path_match("$.halted") == "true")
        .height
    )


def test_rerun_does_nothing(demo):
    lake, _ = demo
    result = CliRunner().invoke(main, ["analyse", "--lake", lake.uri, "--base-skill", str(SKILL)])
    assert result.exit_code == 0
    assert "skipped (already analysed)            │ 526" in result.output


def test_cli_errors_and_help(tmp_path, demo):
    lake, _ = demo
    runner = CliRunner()
    help_text = runner.invoke(main, ["analyse", "--help"]).output
    for option in (
        "--analyst",
        "--model",
        "--base-skill",
        "--limit",
        "--where",
        "--sample",
        "--seed",
    ):
        assert option in help_text
    bad = runner.invoke(main, ["analyse", "--lake", lake.uri, "--where", "nope = 1"])
    assert bad.exit_code == 1 and "not a valid filter on trajectories" in bad.output
    single = runner.invoke(
        main, ["analyse", "--lake", lake.uri, "--analyst", "single", "--model", "offline"]
    )
    assert single.exit_code == 1 and "the single analyst needs a model" in single.output
    sample = runner.invoke(main, ["analyse", "--lake", lake.uri, "--sample", "2.5"])
    assert sample.exit_code == 2 and "--sample" in sample.output
    empty = runner.invoke(main, ["analyse", "--lake", str(tmp_path / "none")])
    assert empty.exit_code == 1 and "run `trace2skill ingest` first" in empty.output
