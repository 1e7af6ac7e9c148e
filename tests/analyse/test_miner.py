"""The miner on small pools: what it learns about tools, and the lessons it writes."""

from __future__ import annotations

import re

import polars as pl
import pytest

from pipeline import sql
from pipeline.analyse.miner.pool import build_pool
from pipeline.analyse.miner.recovery import Strategy, StrategyStat
from pipeline.analyse.miner.rules_flow import _tried
from pipeline.analyse.run import analyse
from pipeline.lake import Lake
from tests.analyse import builders, domains


@pytest.fixture(scope="module")
def pool_lake(tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("miner") / "lake")
    builders.write(lake, domains.shop_runs() + domains.code_runs() + domains.qa_runs())
    return lake


@pytest.fixture(scope="module")
def lessons(pool_lake: Lake) -> pl.DataFrame:
    summary = analyse(pool_lake)
    assert summary.n_failed == 0, summary.errors
    return pool_lake.read("lessons")


def of(lessons: pl.DataFrame, tid: str, rule: str) -> list[dict]:
    return lessons.filter((pl.col("trajectory_id") == tid) & (pl.col("rule") == rule)).to_dicts()


def test_pool_learns_tool_roles_from_the_data(pool_lake: Lake):
    pool = build_pool(sql.connect(pool_lake))
    assert pool.read_only["shop"] == {"get_user", "search_items", "calculate", "handoff"}
    assert pool.write_tools["shop"] == {"place_order", "cancel_order"}
    assert pool.terminal == {"shop": {"handoff"}, "code": {"submit"}, "qa": {"Finish"}}
    assert pool.command_like == {"code": {"bash"}}
    assert pool.families["s0"] == "place_order" and pool.families["n0"] == "no write action"
    path = pool.paths["shop", "place_order"]
    assert path.path == ["get_user", "search_items", "place_order"]
    assert dict(path.before["place_order"]) == {"get_user": 1.0, "search_items": 1.0}


def test_wrong_argument_names_the_value_and_the_call_step(lessons):
    [lesson] = of(lessons, "f_args", "gold_wrong_args")
    assert lesson["kind"] == "failure_cause" and lesson["tool_name"] == "place_order"
    assert lesson["title"] == "Compute items[].qty for place_order exactly before calling it"
    assert "items[A1].qty was 2 where the gold action has 3" in lesson["content"]
    assert lesson["evidence_steps"] == [5, 6]


def test_handoff_instead_of_the_required_write(lessons):
    [missing] = of(lessons, "f_handoff", "gold_missing_call")
    assert "never called place_order; it ended with handoff at step 3" in missing["content"]
    [handoff] = of(lessons, "f_handoff", "handoff_instead_of_write")
    assert handoff["title"] == "Complete place_order yourself instead of handing off with handoff"
    assert handoff["evidence_steps"] == [3, 4]
    assert "4 runs called handoff (3 of them succeeded" in handoff["content"]


def test_unrequested_write_is_an_extra_call(lessons):
    [extra] = of(lessons, "f_extra", "gold_extra_call")
    assert extra["tool_name"] == "cancel_order" and extra["evidence_steps"] == [7, 8]
    assert "not among the grader's gold actions" in extra["content"]


def test_failed_retry_is_told_what_worked_in_the_pool(lessons):
    [rec] = of(lessons, "f_retry", "error_recovery")
    assert rec["kind"] == "failure_lesson"
    assert rec["title"] == (
        "When place_order fails with 'payment amount does not add up, total price is <n>, "
        "but paid <n>', call calculate first, then retry place_order with changed total"
    )
    assert "retried place_order unchanged, which failed again" in rec["content"]
    assert rec["evidence_steps"] == [5, 6, 7, 8]
    [failed] = of(lessons, "f_retry", "gold_failed_call")
    assert "total was 25 where the gold action has 30" in failed["content"]


def test_successful_recovery_is_a_success_lesson(lessons):
    [rec] = of(lessons, "s3", "error_recovery")
    assert rec["kind"] == "success_lesson"
    assert "it went through at step 9" in rec["content"]


def test_shell_recovery_loop_and_missing_submit(lessons):
    [rec] = of(lessons, "k_loop", "error_recovery")
    assert rec["title"] == (
        "When bash `python -m pytest` fails with \"ModuleNotFoundError: No module named '...'\", "
        "call bash `pip install` first, then retry bash `python -m pytest` unchanged"
    )
    assert "4 of 4 went through" in rec["content"]
    [loop] = of(lessons, "k_loop", "error_loop")
    assert loop["evidence_steps"] == [3, 4, 5, 6, 7, 8]
    [halt] = of(lessons, "k_loop", "no_final_call")
    assert halt["title"] == "Commit to a submit call before the step budget runs out"
    assert "100% of the 4 successful runs" in halt["content"]


def test_react_answers_and_search_suggestions(lessons):
    [extra] = of(lessons, "q_extra", "wrong_final_answer")
    assert extra["title"].startswith("Answer with the exact entity only")
    assert "answered 'KXII 12'; the correct answer is 'KXII'" in extra["content"]
    assert of(lessons, "q_extra", "answer_seen_not_used") == []
    [seen] = of(lessons, "q_seen", "answer_seen_not_used")
    assert seen["evidence_steps"] == [1, 2, 3, 4]
    assert "was in the Search result at step 2" in seen["content"]
    [rec] = of(lessons, "q_halt", "error_recovery")
    assert rec["title"].endswith("retry Search with a value copied from the error's suggestions")
    assert of(lessons, "q_halt", "no_final_call")


def test_workflow_lessons_come_from_successful_runs(lessons):
    [path] = of(lessons, "s0", "shared_path")
    assert path["kind"] == "workflow"
    assert path["title"].startswith(
        "Solve place_order tasks with get_user -> search_items -> place_order"
    )
    assert path["evidence_steps"] == [1, 3, 5]


def test_lessons_fit_the_schema_and_cite_real_steps(pool_lake, lessons):
    assert lessons.height > 20
    steps = pool_lake.read("steps").select("trajectory_id", "step_idx")
    cited = lessons.select("trajectory_id", pl.col("evidence_steps").alias("step_idx")).explode(
        "step_idx"
    )
    assert cited.join(steps, on=["trajectory_id", "step_idx"], how="anti").height == 0
    assert (lessons["evidence_steps"].list.len() > 0).all()
    assert set(lessons["target_section"]) >= {"Place order", "Search", "Finish", "Bash"}


def test_base_skill_sections_are_targeted(tmp_path, pool_lake):
    skill = tmp_path / "skill"
    skill.mkdir()
    (skill / "SKILL.md").write_text(
        "---\nname: shop\ndescription: d\n---\n# Shop\n\nIntro.\n\n## Placing orders\n\n"
        "- Place the order with the items and the total.\n\n## Cancelling orders\n\n- Cancel only unshipped orders.\n"
    )
    lake = Lake(tmp_path / "lake2")
    builders.write(lake, domains.shop_runs())
    analyse(lake, base_skill=skill)
    got = lake.read("lessons")
    by_tool = dict(
        got.group_by("tool_name").agg(pl.col("target_section").mode().first()).iter_rows()
    )
    assert by_tool["place_order"] == "Placing orders"
    assert by_tool["cancel_order"] == "Cancelling orders"


@pytest.fixture(scope="module")
def shell_lessons(tmp_path_factory) -> pl.DataFrame:
    lake = Lake(tmp_path_factory.mktemp("shell") / "lake")
    builders.write(lake, domains.shell_runs())
    summary = analyse(lake)
    assert summary.n_failed == 0, summary.errors
    return lake.read("lessons")


def test_shell_errors_are_named_by_their_output_and_program(shell_lessons):
    text = " ".join(shell_lessons["title"].to_list() + shell_lessons["content"].to_list())
    assert "returncode" not in text and "<output>" not in text
    assert "`No" not in text and "`cat" not in text  # prose and heredoc bodies are no programs
    [script] = [r for r in of(shell_lessons, "w1", "error_recovery") if "`python`" in r["title"]]
    assert script["title"] == (
        "When bash `python` fails with \"ModuleNotFoundError: No module named '...'\", "
        "call bash `pip install` first, then retry bash `python` unchanged"
    )
    assert "returned \"ModuleNotFoundError: No module named 'mod1'\"" in script["content"]
    assert "returned this error 8 times in 8 runs" in script["content"]
    titles = [r["title"] for r in of(shell_lessons, "w1", "error_recovery")]
    assert "Prevent 'exit code 1, no output' from bash `grep`: no retry recovered from it" in titles
    assert (
        "Prevent 'bash: line <n>: No: command not found' from bash: no retry recovered from it"
        in titles
    )


def test_each_outcome_of_an_error_is_printed_once(shell_lessons):
    [script] = [r for r in of(shell_lessons, "w3", "error_recovery") if "`python`" in r["title"]]
    tried = re.search(r"in 8 runs \((.*)\)\.", script["content"]).group(1).split("; ")
    assert tried == [
        "called bash `pip install`, then retried bash `python` unchanged: 4 of 4 went through",
        "gave up on bash `python` and called bash `grep`: 0 of 2 runs succeeded",
        "gave up on bash `python` and called bash `ls`: 0 of 2 runs succeeded",
    ]


def test_strategies_that_read_the_same_are_counted_as_one():
    stats = {
        Strategy(False): StrategyStat(n=7),
        Strategy(False, after_other=True): StrategyStat(n=6),
        Strategy(True, "the same value"): StrategyStat(n=5, worked=1),
    }
    assert _tried(stats, "bash:pytest", None) == (
        "made no further tool call: 13 times; retried bash `pytest` unchanged: 1 of 5 went through"
    )
