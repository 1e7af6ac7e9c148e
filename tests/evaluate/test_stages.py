"""rollout and evaluate over a scripted model: lake rows, resume, comparisons, ablation, guard."""

from __future__ import annotations

import json
import zlib

import polars as pl
import pytest

from pipeline import sql
from pipeline.console import Console
from pipeline.evaluate import stages
from pipeline.evaluate.run import RunSettings
from pipeline.evaluate.skill import Skill
from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions
from tests.evaluate.fakes import FakeLLM, tool_call

WTQ = WikiTableQuestions()
GOLD = {t.task_id: t.gold for split in ("train", "test") for t in WTQ.tasks(split)}


def bucket(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % 4


def policy(request):
    """Queries once, then answers: right on half the tasks, on three quarters with the ordering
    section in its prompt, and wrong everywhere a 'Misleading' section is loaded."""
    system = request.messages[0]["content"]
    tools_seen = sum(m["role"] == "tool" for m in request.messages)
    if tools_seen == 0:
        return {
            "content": "Following Ordering questions, I check row_id.",
            "tool_calls": [tool_call("sql", {"query": "select count(*) from t"})],
        }
    if tools_seen == 1 and "references/dates.md" in system:
        return {"tool_calls": [tool_call("read_skill_file", {"path": "references/dates.md"}, "c2")]}
    right = bucket(request.tag) < 2 or (
        "## Ordering questions" in system and bucket(request.tag) == 2
    )
    if "## Misleading" in system:
        right = False
    answer = GOLD[request.tag] if right else ["wrong"]
    return {"tool_calls": [tool_call("submit", {"answer": answer}, "c3")]}


@pytest.fixture
def console():
    return Console(0)


def test_rollout_writes_native_trajectories(lake, console):
    out = stages.rollout(
        lake, WTQ, FakeLLM(policy), model="m-small", split="train", limit=12, console=console
    )
    assert out.played == 12
    traj = lake.read("trajectories").sort("task_id")
    assert traj.height == 12 and set(traj["source"]) == {"wtq-train"}
    assert set(traj["model"]) == {"m-small"} and set(traj["agent"]) == {"trace2skill-agent"}
    meta = json.loads(traj.row(0, named=True)["meta"])
    assert meta["grader"]["gold"] == GOLD[traj.item(0, "task_id")]
    assert meta["run"]["kind"] == "rollout" and meta["skill"] is None
    expected = {t: "success" if bucket(t) < 2 else "failure" for t in traj["task_id"]}
    assert dict(zip(traj["task_id"], traj["outcome"], strict=True)) == expected
    steps = lake.read("steps")
    assert steps.group_by("trajectory_id").len().get_column("len").to_list() == [6] * 12
    assert (traj["n_steps"] == 6).all()
    results = lake.read("eval_results")
    assert results.height == 12 and results["correct"].sum() == sum(bucket(t) < 2 for t in expected)
    arms = lake.read("eval_arms")
    assert (
        arms.item(0, "role") == "rollout" and arms.item(0, "accuracy") == results["correct"].mean()
    )
    run = lake.read("eval_runs")
    assert run.item(0, "kind") == "rollout" and run.item(0, "source") == "wtq-train"
    assert run.item(0, "tokens_out") == 12 * 2 * 10

    # a rerun of the same rollout plays nothing and writes no duplicate
    again = stages.rollout(
        lake, WTQ, FakeLLM(policy), model="m-small", split="train", limit=12, console=console
    )
    assert again.played == 0 and again.eval_id == out.eval_id
    assert lake.read("trajectories").height == 12 and lake.read("eval_results").height == 12


def test_rollout_resumes_after_a_crash(lake, console, monkeypatch):
    from pipeline.evaluate import run as run_module

    monkeypatch.setattr(run_module, "BATCH", 5)
    real = run_module.write_batch
    calls = {"n": 0}

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(run_module, "write_batch", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        stages.rollout(
            lake,
            WTQ,
            FakeLLM(policy),
            model="m",
            split="test",
            limit=15,
            settings=RunSettings(concurrency=1),
            console=console,
        )
    assert lake.read("eval_results").height == 10
    monkeypatch.setattr(run_module, "write_batch", real)
    llm = FakeLLM(policy)
    out = stages.rollout(lake, WTQ, llm, model="m", split="test", limit=15, console=console)
    assert out.played == 5 and lake.read("eval_results").height == 15
    assert {r.tag for r in llm.requests} <= {t.task_id for t in WTQ.tasks("test", 15)}


def test_model_errors_become_rows(lake, console):
    tasks = WTQ.tasks("train", limit=6)
    llm = FakeLLM(policy, fail_on={tasks[0].task_id})
    out = stages.rollout(lake, WTQ, llm, model="m", split="train", limit=6, console=console)
    results = lake.read("eval_results").filter(pl.col("task_id") == tasks[0].task_id)
    assert results.item(0, "status") == "error" and not results.item(0, "correct")
    assert "HTTP 500" in results.item(0, "error")
    traj = lake.read("trajectories").filter(pl.col("task_id") == tasks[0].task_id)
    assert traj.item(0, "outcome") == "unknown" and traj.item(0, "reward") is None
    assert out.arms.item(0, "n_errors") == 1 and out.arms.item(0, "n_tasks") == 6

    # the next run plays the faulted batch again, and the episode now succeeds in place
    again = stages.rollout(
        lake, WTQ, FakeLLM(policy), model="m", split="train", limit=6, console=console
    )
    assert again.played == 6 and again.arms.item(0, "n_errors") == 0
    results = lake.read("eval_results")
    assert results.height == 6 and set(results["status"]) == {"submitted"}
    assert lake.read("trajectories").height == 6


def write_skill(root, sections: dict[str, str], files: dict[str, str] | None = None):
    body = "\n".join(f"## {title}\n{text}\n" for title, text in sections.items())
    root.mkdir(parents=True)
    (root / "SKILL.md").write_text(
        f"---\nname: {root.name}\ndescription: test skill\n---\n# Skill\n\n{body}"
    )
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Skill.load(root)


def test_eval_compares_ablates_and_guards(lake, console, tmp_path):
    good = write_skill(
        tmp_path / "good",
        {"Ordering questions": "Order by row_id.", "Counting questions": "Use count(*)."},
        {"references/dates.md": "Dates."},
    )
    old = write_skill(tmp_path / "old", {"Counting questions": "Use count(*)."})
    llms = {"m-small": FakeLLM(policy), "m-large": FakeLLM(policy)}
    out = stages.evaluate(
        lake,
        WTQ,
        llms,
        split="test",
        limit=24,
        skills=[good],
        incumbent=old,
        margin=0.05,
        ablate=True,
        console=console,
    )
    n_units = 3
    assert out.arms.height == 2 * (3 + n_units)
    tasks = [t.task_id for t in WTQ.tasks("test", limit=24)]
    base_acc = sum(bucket(t) < 2 for t in tasks) / 24
    good_acc = sum(bucket(t) < 3 for t in tasks) / 24
    arms = {(r["model"], r["role"], r["label"]): r for r in out.arms.iter_rows(named=True)}
    assert arms[("m-small", "baseline", "no skill")]["accuracy"] == pytest.approx(base_acc)
    assert arms[("m-small", "candidate", "good")]["accuracy"] == pytest.approx(good_acc)
    assert arms[("m-large", "incumbent", "old")]["accuracy"] == pytest.approx(base_acc)
    cmp = out.comparisons
    vs_base = cmp.filter((pl.col("kind") == "vs_baseline") & (pl.col("label") == "good")).row(
        0, named=True
    )
    gained = sum(bucket(t) == 2 for t in tasks)
    assert vs_base["wins"] == gained and vs_base["losses"] == 0 and vs_base["ci_low"] > 0
    assert gained > 0 and vs_base["delta"] == pytest.approx(gained / 24)
    # the ablation finds the one section that matters
    ranking = cmp.filter((pl.col("kind") == "ablation") & (pl.col("model") == "m-small")).sort(
        "rank"
    )
    assert ranking["unit"][0] == "Ordering questions" and ranking["delta"][0] == pytest.approx(
        gained / 24
    )
    assert ranking["delta"][1:].to_list() == [0.0, 0.0]
    assert out.verdict == "promote" and "within the allowed drop of 0.050" in out.reason

    # attribution tables in SQL
    con = sql.connect(lake)
    ablation = sql.query(con, "eval_ablation", eval_id=out.eval_id)
    top = ablation.filter((pl.col("model") == "m-small") & (pl.col("rank") == 1)).row(0, named=True)
    assert top["unit"] == "Ordering questions" and top["n_cited"] == 24
    dates = ablation.filter(
        (pl.col("model") == "m-small") & (pl.col("unit") == "references/dates.md")
    )
    assert dates.item(0, "n_read") == 24
    usage = sql.query(con, "eval_skill_usage", eval_id=out.eval_id)
    row = usage.filter(
        (pl.col("model") == "m-small")
        & (pl.col("label") == "good")
        & (pl.col("item") == "references/dates.md")
    ).row(0, named=True)
    assert row["n_read"] == 24 and row["n_runs"] == 24 and row["accuracy_not_used"] is None
    transfer = sql.query(con, "eval_transfer", eval_id=out.eval_id)
    assert transfer.height == 6 and transfer["role"].to_list()[:3] == [
        "baseline",
        "incumbent",
        "candidate",
    ]
    assert lake.read("eval_runs").item(0, "verdict") == "promote"


def test_guard_refuses_a_worse_candidate(lake, console, tmp_path):
    bad = write_skill(tmp_path / "bad", {"Misleading": "Always answer 'wrong'.", "Other": "x"})
    inc = write_skill(tmp_path / "inc", {"Ordering questions": "Order by row_id."})

    def guarded(margin: float):
        return stages.evaluate(
            lake,
            WTQ,
            {"m": FakeLLM(policy)},
            split="test",
            limit=20,
            skills=[bad],
            incumbent=inc,
            margin=margin,
            console=console,
        )

    out = guarded(0.05)
    assert out.verdict == "refuse"
    row = out.comparisons.filter(pl.col("kind") == "vs_incumbent").row(0, named=True)
    assert row["accuracy"] == 0.0 and row["delta"] == -row["reference_accuracy"] < -0.05
    assert f"candidate 0.000 vs incumbent {row['reference_accuracy']:.3f} on 20 tasks" in out.reason
    assert "a drop of more than the allowed 0.050" in out.reason
    # the margin is the rule: a tolerance wider than the drop lets it through
    wide = guarded(1.0)
    assert wide.verdict == "promote"


def test_eval_refuses_bad_combinations(lake, console, skill_dir):
    skill = Skill.load(skill_dir)
    with pytest.raises(ValueError, match="at least one skill"):
        stages.evaluate(lake, WTQ, {"m": FakeLLM(policy)}, split="test", skills=[], console=console)
    with pytest.raises(ValueError, match="one candidate"):
        stages.evaluate(
            lake,
            WTQ,
            {"m": FakeLLM(policy)},
            split="test",
            skills=[skill, skill],
            incumbent=skill,
            console=console,
        )


def test_two_skills_of_one_name_are_told_apart_by_the_folders_named(tmp_path):
    from pipeline.skill.folder import SkillFolder, stage_skill
    from pipeline.skill.publish import publish

    skills = []
    for parent in ("first", "second"):
        out = tmp_path / parent / "airline"
        text = "---\nname: airline\ndescription: d\n---\n\n# Airline\n\nText.\n"
        publish(stage_skill(SkillFolder({"SKILL.md": text.encode()}), out), out, parent)
        skills.append(Skill.load(out))
    assert stages.labels(skills) == ["first/airline", "second/airline"]
