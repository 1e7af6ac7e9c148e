"""rollout and eval on the command line: help, and bad input refused before any model is called."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_and_list():
    for command in ("rollout", "eval"):
        result = run(command, "--help")
        assert (
            result.exit_code == 0
            and "--env NAME" in result.output
            and "--max-turns" in result.output
        )
    assert "--incumbent" in run("eval", "--help").output
    listed = run("rollout", "--list-envs")
    assert listed.exit_code == 0 and "wtq" in listed.output.split()


@pytest.mark.parametrize(
    "args, message",
    [
        (["rollout", "--env", "nope", "--model", "m"], "unknown environment 'nope'"),
        (["rollout", "--split", "validation", "--model", "m"], "no split 'validation'"),
        (["eval", "--model", "m", "--skill", "{empty}"], "no SKILL.md"),
        (["eval", "--model", "m", "--skill", "{skill}", "--baseline", "{empty}"], "no SKILL.md"),
        (
            [
                "eval",
                "--model",
                "m",
                "--skill",
                "{skill}",
                "--skill",
                "{skill}",
                "--incumbent",
                "{skill}",
            ],
            "--incumbent takes exactly one --skill",
        ),
        (["eval", "--skill", "{skill}"], "Missing option '--model'"),
        (["eval", "--model", "m", "--skill", "{skill}", "--margin", "2"], "--margin"),
        (["rollout", "--data", "{empty}", "--model", "m"], "not a WikiTableQuestions folder"),
    ],
)
def test_bad_input_is_named(tmp_path, skill_dir, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(empty=empty, skill=skill_dir) for a in args]
    result = run(*args, "--lake", str(tmp_path / "lake"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "lake").exists()  # nothing was written
