"""Every example query on the demo lake (both demo sources distilled, see demo.py) against its
golden result, and what the examples say checked against the lake tables by other means."""

from __future__ import annotations

import math

import polars as pl
import pytest

from pipeline import sql as sqlfiles
from pipeline.report.views import connect_views

from . import demo, golden

EXAMPLES = sorted(p.stem for p in (sqlfiles.SQL_DIR / "examples").glob("*.sql"))
# Statements of the newest skill (the split) whose lineage is checked: one from the miner's
# lessons, one from the model analyst's.
MINER_LINE = "- When book_reservation fails with 'payment amount does not add up"
MODEL_LINE = "- Read the book_reservation details back to the user"
VOLATILE = {"cost_by_stage_model": ["mean_latency_ms"]}  # wall time of a live server


@pytest.fixture(scope="module")
def con(demo_lake):
    con = connect_views(demo_lake.lake)
    yield con
    con.close()


def line_of(con, prefix: str) -> int:
    rows = con.sql(
        "select line_no from latest_skill_lines where file = 'SKILL.md' and starts_with(text, $p)",
        params={"p": prefix},
    ).fetchall()
    assert len(rows) == 1, f"expected one SKILL.md line starting {prefix!r}, got {rows}"
    return rows[0][0]


def lineage(con, prefix: str) -> pl.DataFrame:
    return sqlfiles.query(
        con, "examples/skill_line_lineage", file="SKILL.md", line_no=line_of(con, prefix)
    )


def rounded(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).round(6))


def test_the_newest_run_is_the_split(con, demo_lake):
    (run_id,) = con.sql("select run_id from latest_run").fetchall()[0]
    assert run_id == demo_lake.runs["split"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_on_the_demo_lake(con, name):
    if name == "skill_line_lineage":
        frame = lineage(con, MINER_LINE)
    else:
        frame = sqlfiles.query(con, f"examples/{name}")
    assert frame.height > 0, f"{name} returns nothing on the demo lake"
    frame = rounded(frame.drop(VOLATILE.get(name, [])))
    golden.check(f"report/examples_demo/{name}.jsonl", golden.rows_text(frame))


def test_every_demo_golden_has_its_query():
    goldens = {p.stem for p in (golden.GOLDEN / "report" / "examples_demo").glob("*.jsonl")}
    assert goldens == set(EXAMPLES)


def test_lineage_of_a_recovery_leads_to_the_error_and_the_retry(con, demo_lake):
    rows = lineage(con, MINER_LINE)
    steps = demo_lake.lake.read("steps")
    for r in rows.iter_rows(named=True):
        cited = steps.filter(
            (pl.col("trajectory_id") == r["trajectory_id"])
            & pl.col("step_idx").is_in(r["evidence_steps"])
        ).sort("step_idx")
        assert cited.height == len(r["evidence_steps"]), r["lesson_id"]
        errors = cited.filter(pl.col("is_error"))
        assert errors.height >= 1 and (errors["tool_name"] == "book_reservation").all()
        assert errors["content"].str.contains("payment amount does not add up").all()
        # the retry it cites: went through where the lesson is what worked, failed again where
        # the lesson is what the run should have done instead
        retry = cited.filter(
            (pl.col("kind") == "tool_result") & (pl.col("step_idx") > errors["step_idx"].min())
        )
        assert (retry["tool_name"] == "book_reservation").all() and retry.height, r["lesson_id"]
        worked = r["kind"] == "success_lesson"
        assert retry["is_error"].to_list()[-1] is not worked, (r["lesson_id"], r["kind"])
        assert len(r["evidence"]) == len(r["evidence_steps"])
        assert any("(error): Error: payment amount" in e for e in r["evidence"])


def test_lineage_of_a_model_lesson_leads_to_the_call_it_names(con, demo_lake):
    rows = lineage(con, MODEL_LINE)
    lessons = demo_lake.lake.read("lessons")
    expected = lessons.filter(
        pl.col("title").str.starts_with(MODEL_LINE.removeprefix("- "))
        & pl.col("trajectory_id").is_in(
            con.sql("select trajectory_id from latest_run_trajectories")
            .pl()["trajectory_id"]
            .implode()
        )
    )
    assert sorted(rows["lesson_id"]) == sorted(expected["lesson_id"])
    assert rows.height >= 2 and (rows["kind"].is_in(["failure_lesson", "success_lesson"])).all()
    calls = demo_lake.lake.read("steps").filter(pl.col("kind") == "tool_call")
    for r in rows.iter_rows(named=True):
        (step,) = r["evidence_steps"]
        cited = calls.filter(
            (pl.col("trajectory_id") == r["trajectory_id"]) & (pl.col("step_idx") == step)
        )
        assert cited["tool_name"].to_list() == ["book_reservation"], r
        assert r["evidence"][0].startswith(f"[{step}] tool_call book_reservation: ")


def test_cost_is_the_tokens_at_the_price(con, demo_lake):
    (row,) = sqlfiles.query(con, "examples/cost_by_stage_model").iter_rows(named=True)
    calls = demo_lake.lake.read("llm_calls")
    n_runs = calls["tag"].n_unique()
    sent = calls.filter(~pl.col("cache_hit"))
    price_in, price_out = demo.PRICES[demo.MODEL]
    expected = (sent["tokens_in"].sum() * price_in + sent["tokens_out"].sum() * price_out) / 1e6
    assert row["cost_usd"] == pytest.approx(expected, abs=1e-6) and row["cost_usd"] > 0
    assert (row["stage"], row["model"]) == ("analyse", demo.MODEL)
    # first pass: one call per run (the 500 retried within it, the invalid run repaired once
    # and then an error); second pass: the answered runs from the cache, the error row again
    assert row["n_calls"] == 2 * n_runs and row["n_cache_hits"] == n_runs - 1
    assert (row["n_errors"], row["n_retries"]) == (1, 2)
    assert row["tokens_in"] == sent["tokens_in"].sum()
    latency = row["mean_latency_ms"]
    assert latency is not None and math.isfinite(latency) and latency > 0
    hits = calls.filter(pl.col("cache_hit"))["latency_ms"]
    assert hits.max() < sent["latency_ms"].mean(), "a cache hit is not faster than a call"


def test_failed_tasks_without_lesson_are_the_held_out_tasks(con, demo_lake):
    rows = sqlfiles.query(con, "examples/failed_tasks_without_lesson")
    runs = demo_lake.lake.read("trajectories").filter(pl.col("source") == "tau-bench-airline")
    task_no = pl.col("task_id").cast(pl.Int64, strict=False)
    failed_held_out = runs.filter((task_no >= 35) & (pl.col("outcome") == "failure"))[
        "task_id"
    ].unique()
    assert sorted(rows["task_id"]) == sorted(failed_held_out)
    assert set(rows["why"]) == {"lessons not read by the run"}
    assert (rows["n_lessons_read"] == 0).all() and (rows["n_lessons"] > 0).all()


def test_recoveries_agree_with_the_steps(con, demo_lake):
    rows = sqlfiles.query(con, "examples/recoveries_per_tool")
    steps = demo_lake.lake.read("steps").filter(pl.col("source") == "tau-bench-airline")
    calls = steps.filter(pl.col("kind") == "tool_call").select(
        "trajectory_id", "step_idx", "tool_name"
    )
    results = steps.filter(pl.col("kind") == "tool_result").select(
        "trajectory_id", pl.col("call_step_idx").alias("step_idx"), "is_error"
    )
    joined = calls.join(results, on=["trajectory_id", "step_idx"], how="left").sort(
        "trajectory_id", "step_idx"
    )
    with_next = joined.with_columns(
        next_error=pl.col("is_error").shift(-1).over("trajectory_id", "tool_name"),
        has_next=pl.col("step_idx").shift(-1).over("trajectory_id", "tool_name").is_not_null(),
    ).filter(pl.col("is_error").fill_null(False))
    expected = (
        with_next.group_by("tool_name")
        .agg(
            n_errors=pl.len(),
            n_retried=pl.col("has_next").sum(),
            n_recovered=(pl.col("has_next") & (pl.col("next_error") == False)).sum(),  # noqa: E712
        )
        .sort("tool_name")
    )
    got = (
        rows.group_by("tool_name")
        .agg(pl.col("n_errors", "n_retried", "n_recovered").sum())
        .sort("tool_name")
    )
    assert got.rows() == expected.rows()
    assert (rows["n_recovered"] <= rows["n_retried"]).all()


def test_runs_per_rule_adds_up(con, demo_lake):
    rows = sqlfiles.query(con, "examples/runs_per_rule")
    lessons = demo_lake.lake.read("lessons").join(
        demo_lake.lake.read("trajectories").select("trajectory_id", "source"), on="trajectory_id"
    )
    assert rows["n_lessons"].sum() == lessons.filter(pl.col("source") == "tau-bench-airline").height
    (n_read,) = con.sql("select n_lessons from latest_consolidations").fetchall()[0]
    assert rows["n_lessons_read"].sum() == n_read
    assert set(rows["analyst"]) == {"miner", "single"}
