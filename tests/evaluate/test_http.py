"""rollout and eval through the command line and the real client, against the loopback server:
runs over HTTP into the lake, resume from the lake, model faults as rows, the guard's exit."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.lake import Lake
from tests.evaluate.agents import WTQ, answer, knows, write_skill


@pytest.fixture
def server(loopback, monkeypatch, tmp_path):
    loopback.responder = answer
    monkeypatch.setenv("OPENAI_API_KEY", "loopback-key")
    monkeypatch.chdir(tmp_path)  # no ./trace2skill.toml of the repository's
    return loopback


def cli(server, tmp_path, *args: str):
    settings = tmp_path / "models.toml"
    settings.write_text("[model]\nmax_retries = 0\ntimeout_s = 5.0\n")
    common = [
        "--base-url",
        server.url,
        "--settings",
        str(settings),
        "--lake",
        str(tmp_path / "lake"),
    ]
    return CliRunner().invoke(main, [*args, *common], catch_exceptions=False)


def test_rollout_over_http_resumes_from_the_lake(server, tmp_path):
    first = cli(
        server, tmp_path, "rollout", "--split", "train", "--limit", "12", "--model", "small"
    )
    assert first.exit_code == 0, first.output
    assert "12 episodes played" in first.output
    lake = Lake(tmp_path / "lake")
    traj = lake.read("trajectories")
    assert (
        traj.height == 12
        and set(traj["source"]) == {"wtq-train"}
        and set(traj["model"]) == {"small"}
    )
    expected = {t: "success" if knows(t) else "failure" for t in traj["task_id"]}
    assert dict(zip(traj["task_id"], traj["outcome"], strict=True)) == expected
    calls = lake.read("llm_calls")
    assert set(calls["stage"]) == {"rollout"} and set(calls["tag"]) == set(traj["task_id"])
    assert not calls["cache_hit"].any() and calls["tokens_in"].sum() > 0
    results = lake.read("eval_results")
    assert results["tokens_in"].sum() == calls["tokens_in"].sum()  # every token counted
    failed = lake.read("steps").filter(pl.col("is_error"))
    assert failed.height == sum(v == "failure" for v in expected.values()) > 0  # bad queries
    assert failed["content"].str.contains("missing_column").all()
    sent = len(server.chat_requests)

    again = cli(
        server, tmp_path, "rollout", "--split", "train", "--limit", "12", "--model", "small"
    )
    assert again.exit_code == 0 and "0 episodes played" in again.output
    assert len(server.chat_requests) == sent  # nothing asked twice
    assert lake.read("trajectories").height == 12


def test_model_faults_are_rows_and_the_next_run_retries(server, tmp_path):
    task = WTQ.tasks("test", limit=5)[0]
    server.fail("500", times=1, match=lambda body: body["messages"][1]["content"] == task.prompt)
    first = cli(server, tmp_path, "rollout", "--split", "test", "--limit", "5", "--model", "m")
    assert first.exit_code == 0, first.output
    lake = Lake(tmp_path / "lake")
    row = lake.read("eval_results").filter(pl.col("task_id") == task.task_id).row(0, named=True)
    assert row["status"] == "error" and "500" in row["error"] and not row["correct"]
    traj = lake.read("trajectories").filter(pl.col("task_id") == task.task_id)
    assert traj.item(0, "outcome") == "unknown"
    assert lake.read("llm_calls")["error"].drop_nulls().len() == 1

    second = cli(server, tmp_path, "rollout", "--split", "test", "--limit", "5", "--model", "m")
    assert second.exit_code == 0 and "faulted episodes" in second.output
    row = lake.read("eval_results").filter(pl.col("task_id") == task.task_id).row(0, named=True)
    assert row["status"] == "submitted" and lake.read("eval_results").height == 5


def test_eval_over_http_transfer_and_guard(server, tmp_path):
    good = write_skill(tmp_path / "good")
    bad = write_skill(tmp_path / "bad", "Misleading", "Answer 'wrong'.")
    ok = cli(
        server, tmp_path, "eval", "--split", "test", "--limit", "12", "--model", "small",
        "--model", "large", "--skill", good, "--incumbent", bad, "--margin", "0.05",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "transfer matrix" in ok.output and "may be promoted" in ok.output
    lake = Lake(tmp_path / "lake")
    arms = lake.read("eval_arms")
    acc = {(r["model"], r["role"]): r["accuracy"] for r in arms.iter_rows(named=True)}
    tasks = WTQ.tasks("test", limit=12)
    assert acc[("large", "baseline")] == pytest.approx(sum(knows(t.task_id) for t in tasks) / 12)
    assert acc[("large", "candidate")] == acc[("small", "candidate")] == 1.0
    assert acc[("small", "incumbent")] == 0.0
    run = lake.read("eval_runs").row(0, named=True)
    assert run["verdict"] == "promote" and json.loads(run["settings"])["models"] == [
        "small",
        "large",
    ]
    assert run["tokens_in"] == lake.read("llm_calls")["tokens_in"].sum()

    refused = cli(
        server, tmp_path, "eval", "--split", "test", "--limit", "12", "--model", "small",
        "--skill", bad, "--incumbent", good, "--margin", "0.05",
    )  # fmt: skip
    assert refused.exit_code == 3, refused.output
    assert "not promoted" in refused.output
    assert "candidate 0.000 vs incumbent 1.000 on 12 tasks" in refused.output
    assert "a drop of more than the allowed 0.050" in refused.output
