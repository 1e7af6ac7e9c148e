from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import DATA
from tests.consolidate.conftest import write_lake

BASE = str(DATA / "tau-bench-airline" / "base-skill")


def run(*args):
    return CliRunner().invoke(main, ["consolidate", *args], catch_exceptions=False)


def test_help_lists_the_options():
    res = run("--help")
    assert res.exit_code == 0
    for option in (
        "--base-skill",
        "--fan-in",
        "--min-support",
        "--mode",
        "--lessons-per-edit",
        "--model",
        "--base-url",
        "--token-budget",
        "--summary-sample",
        "--near-threshold",
        "--semantic-threshold",
        "--out",
    ):
        assert option in res.output


def test_consolidate_command_writes_the_skill_and_prints_a_summary(lake, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    out = tmp_path / "airline-agent-policy"
    res = run("--lake", lake.uri, "--base-skill", BASE, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "clusters (kept)" in res.output and "6 (5)" in res.output
    assert (out / "SKILL.md").exists()
    res = run(
        "--lake",
        lake.uri,
        "--out",
        str(tmp_path / "seq"),
        "--mode",
        "sequential",
        "--lessons-per-edit",
        "4",
    )
    assert res.exit_code == 0 and "(sequential)" in res.output


def test_clear_errors(lake, tmp_path, fixture_rows, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "T2S_MODEL"):
        monkeypatch.delenv(var, raising=False)
    res = run("--lake", lake.uri, "--out", str(tmp_path))
    assert res.exit_code == 1 and "no lessons" in res.output
    write_lake(lake, fixture_rows)
    res = run("--lake", lake.uri, "--out", str(tmp_path / "x"), "--model", "gpt-4o")
    assert res.exit_code == 1 and "needs an API key" in res.output
    res = run(
        "--lake", lake.uri, "--out", str(tmp_path / "x"), "--settings", str(tmp_path / "no.toml")
    )
    assert res.exit_code == 1 and "settings file" in res.output and "does not exist" in res.output
    res = run("--lake", lake.uri, "--out", str(tmp_path / "x"), "--summary-sample", "0")
    assert res.exit_code == 1 and "summary-sample" in res.output
    res = run("--lake", lake.uri, "--out", str(tmp_path / "Bad Name"))
    assert res.exit_code == 1 and "kebab-case" in res.output
    res = run("--lake", lake.uri, "--out", str(tmp_path), "--base-skill", str(tmp_path / "missing"))
    assert res.exit_code == 1 and "no SKILL.md" in res.output
    res = run("--lake", lake.uri, "--out", str(tmp_path), "--semantic-threshold", "2")
    assert res.exit_code == 1 and "semantic-threshold" in res.output
