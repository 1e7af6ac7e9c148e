"""The swebench synthetic family: several attempts per task, behaviours visible in the commands,
and planted effects that move the outcome in their direction (nulls flat within a task)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.ingest.run import EXIT_OK, ingest_paths
from pipeline.ingest.synth import shard_episodes, swebench, write_synthetic
from pipeline.ingest.synth.episode import Episode
from pipeline.lake import Lake
from tests.ingest.test_synth import digest_tree


def attempts(n: int, seed: int = 0, fmt: str = "openai-chat") -> list[Episode]:
    return shard_episodes(fmt, seed, 0, 0, n, "swebench")


def commands(e: Episode) -> list[str]:
    return [
        json.loads(call["function"]["arguments"])["command"]
        for m in e.messages
        if m["role"] == "assistant"
        for call in m.get("tool_calls") or []
    ]


def behaviours_in_commands(e: Episode) -> set[str]:
    """The behaviours a run shows, read back from its commands the way a miner would."""
    cmds = commands(e)
    source = next(c.split()[-1] for c in cmds if c.startswith("sed -i") and " tests/" not in c)
    edits = [i for i, c in enumerate(cmds) if c.startswith("sed -i") and c.endswith(source)]
    before, after = cmds[: edits[0]], cmds[edits[-1] + 1 :]
    found = {
        "reproduced_before_edit": any("<<'EOF' > reproduce_issue.py" in c for c in before)
        and any("python reproduce_issue.py" in c for c in before),
        "tested_after_last_edit": any("pytest" in c for c in after),
        "edited_tests": any(c.startswith("sed -i") and " tests/" in c for c in cmds),
        "used_navigate": any(c in ("ls -la", "cd /testbed && ls") for c in cmds),
        "used_install": "pip install -e ." in cmds,
        "viewed_before_edit": any(
            c in (f"cat {source}", f"sed -n '1,80p' {source}") for c in before
        ),
        "used_search": any(c.startswith(("grep -rn", "find . -name")) for c in cmds),
    }
    return {name for name, shown in found.items() if shown}


def success_gap(runs: list[Episode], behaviour: str) -> tuple[float, float]:
    """(pooled, within-task) success rate with minus without the behaviour; the within-task gap
    weighs each task by how evenly its attempts split."""

    def rate(es: list[Episode]) -> float:
        return sum(e.outcome == "success" for e in es) / len(es)

    def split(es: list[Episode]) -> tuple[list[Episode], list[Episode]]:
        return [e for e in es if behaviour in e.grader["injected"]], [
            e for e in es if behaviour not in e.grader["injected"]
        ]

    with_, without = split(runs)
    pooled = rate(with_) - rate(without)
    by_task: dict[str, list[Episode]] = defaultdict(list)
    for e in runs:
        by_task[e.task_id].append(e)
    total = weight = 0.0
    for es in by_task.values():
        a, b = split(es)
        if a and b:
            w = len(a) * len(b) / len(es)
            total += w * (rate(a) - rate(b))
            weight += w
    return pooled, total / weight


def test_attempts_of_a_task_share_its_task_id_and_come_from_several_models():
    runs = attempts(400)
    by_task: dict[str, list[Episode]] = defaultdict(list)
    for e in runs:
        by_task[e.task_id].append(e)
    assert len(by_task) == 400 // swebench.RUNS_PER_TASK
    assert list(by_task) == [swebench.task(0, k).task_id for k in range(len(by_task))]
    for es in by_task.values():
        assert [e.trial for e in es] == list(range(swebench.RUNS_PER_TASK))
        assert len({e.model for e in es}) >= 2
        assert len({e.messages[1]["content"] for e in es}) == 1  # one task statement
    # A task does not depend on the format or shard its attempts are written in.
    assert [e.task_id for e in attempts(400, fmt="parquet")] == [e.task_id for e in runs]
    other_shard = shard_episodes("openai-chat", 0, 3, 8, 24, "swebench")
    assert [e.task_id for e in other_shard] == [e.task_id for e in runs[8:24]]


def test_injected_behaviours_are_exactly_those_visible_in_the_commands():
    runs = attempts(400)
    for e in runs:
        assert behaviours_in_commands(e) == set(e.grader["injected"]), commands(e)
        assert set(e.grader) == {"injected"}
        assert commands(e)[-1] == "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff"
    seen = {name: sum(name in e.grader["injected"] for e in runs) for name in swebench.PLANTED}
    assert all(40 <= k <= 360 for k in seen.values()), seen
    # The last test output of a run that tested after its last edit tells its outcome.
    for e in runs:
        if "tested_after_last_edit" in e.grader["injected"]:
            last = [
                m["content"] for m in e.messages if m["role"] == "tool" and "passed" in m["content"]
            ]
            failed = last[-1].startswith("<returncode>1</returncode>")
            assert failed == (e.outcome == "failure")


def test_planted_effects_move_the_outcome_and_nulls_are_flat_within_tasks():
    runs = attempts(1600, seed=11)
    assert swebench.PLANTED == {
        "reproduced_before_edit": 1, "tested_after_last_edit": 1, "edited_tests": -1,
        "used_navigate": 0, "used_install": 0, "viewed_before_edit": 0, "used_search": 0,
    }  # fmt: skip
    assert swebench.CONFOUNDED == {"used_search"}
    for name, sign in swebench.PLANTED.items():
        pooled, within = success_gap(runs, name)
        if sign:
            assert pooled * sign > 0.15 and within * sign > 0.15, (name, pooled, within)
        elif name in swebench.CONFOUNDED:
            assert pooled < -0.08 and abs(within) < 0.06, (name, pooled, within)
        else:
            assert abs(pooled) < 0.08 and abs(within) < 0.08, (name, pooled, within)


@pytest.mark.parametrize("fmt", ["mini-swe-agent", "swe-agent", "openai-chat", "parquet"])
def test_each_format_ingests_attempts_with_their_outcomes(tmp_path: Path, fmt: str):
    n = 48
    paths = write_synthetic(tmp_path / "raw", n, format=fmt, seed=2, family="swebench")
    assert not [p for p in paths if p.name in ("report.json", "labels.csv")]
    lake = Lake(tmp_path / "lake")
    summary = ingest_paths(lake, [tmp_path / "raw"])
    assert summary.exit_code == EXIT_OK, summary.errors
    t = lake.read("trajectories")
    assert t.height == n
    assert set(t["outcome_origin"]) == {"source"}
    wins = t.group_by("task_id").agg((pl.col("outcome") == "success").sum().alias("wins"))
    expected: dict[str, int] = defaultdict(int)
    for e in attempts(n, seed=2, fmt=fmt):
        expected[e.task_id] += e.outcome == "success"
    assert dict(wins.rows()) == dict(expected)
    assert 0 < sum(expected.values()) < n
    if fmt in ("openai-chat", "parquet"):
        graders = [json.loads(m)["grader"] for m in t["meta"]]
        assert all(set(g) == {"injected"} for g in graders)


def test_same_seed_same_bytes_and_the_usual_mix_is_unchanged(tmp_path: Path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_synthetic(tmp_path / name, 24, format="mini-swe-agent", seed=seed, family="swebench")
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert digest_tree(tmp_path / "a") != digest_tree(tmp_path / "c")
    write_synthetic(tmp_path / "mix", 24, format="mini-swe-agent", seed=1)
    write_synthetic(tmp_path / "coding", 24, format="mini-swe-agent", seed=1, family="coding")
    assert digest_tree(tmp_path / "mix") == digest_tree(tmp_path / "coding")


def test_family_must_fit_the_format(tmp_path: Path):
    with pytest.raises(ValueError, match="tau-bench runs cannot be of family 'swebench'"):
        write_synthetic(tmp_path / "x", 8, format="tau-bench", family="swebench")
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["synth", "--out", str(out), "-n", "16", "--format", "mini-swe-agent"]
    result = runner.invoke(main, [*args, "--family", "swebench"])
    assert result.exit_code == 0, result.output
    assert "wrote 16 mini-swe-agent runs" in result.output and "--labels" not in result.output
    assert len(list(out.rglob("*.traj.json"))) == 16
    bad = runner.invoke(main, ["synth", "--out", str(tmp_path / "y"), "-n", "4", "--family", "qa"])
    assert bad.exit_code == 2 and "cannot be of family 'qa'" in bad.output
