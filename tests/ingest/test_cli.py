"""The ingest and stats commands as a user runs them; stats checked against golden output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "ingest"
FIXTURES = Path("tests/ingest/fixtures")


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    monkeypatch.chdir(ROOT)  # paths in the lake read as a user would type them
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: table cells are not wrapped
    return CliRunner()


@pytest.mark.parametrize("command", ["ingest", "stats", "synth"])
def test_help(runner: CliRunner, command: str):
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_ingest_help_documents_exit_status(runner: CliRunner):
    out = runner.invoke(main, ["ingest", "--help"]).output
    assert "Exit status" in out and " 3 " in out and " 4 " in out and "mapping:FILE" in out


def test_ingest_exit_codes_and_messages(runner: CliRunner, tmp_path: Path):
    lake = str(tmp_path / "lake")
    ok = runner.invoke(main, ["ingest", str(FIXTURES / "chat.jsonl"), "--lake", lake])
    assert ok.exit_code == 0, ok.output
    assert "3 trajectories" in ok.output and "openai-chat" in ok.output
    assert "format: detected from content (1)" in ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\n{oops\n')
    partial = runner.invoke(main, ["ingest", str(bad), "--lake", lake])
    assert partial.exit_code == 3
    assert f"{bad}: line 2: invalid JSON" in partial.output
    nothing = runner.invoke(main, ["ingest", str(tmp_path / "missing"), "--lake", lake])
    assert nothing.exit_code == 4 and "no such file or folder" in nothing.output
    usage = runner.invoke(main, ["ingest", str(bad), "--lake", lake, "--format", "nope"])
    assert usage.exit_code == 2 and "unknown format 'nope'" in usage.output
    quiet = runner.invoke(main, ["-q", "ingest", str(FIXTURES / "chat.jsonl"), "--lake", lake])
    assert quiet.exit_code == 0 and "trajectories," not in quiet.output


def test_verbose_lists_each_file_and_how_its_format_was_chosen(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(main, ["-v", "ingest", str(FIXTURES), "--lake", str(tmp_path / "l")])
    assert "acme__csv-12.traj: ingested, swe-agent (by content)" in result.output
    assert "ignored: tests/ingest/fixtures/custom-runs.json: format not recognised" in result.output


def stats_payload(runner: CliRunner, lake: str) -> dict:
    result = runner.invoke(main, ["stats", "--lake", lake, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for row in payload["files"]:
        row.pop("ingested_at")
    return payload


def test_stats_over_the_fixture_lake_matches_golden(runner: CliRunner, tmp_path: Path):
    lake = str(tmp_path / "lake")
    runner.invoke(main, ["ingest", str(FIXTURES), "--lake", lake])
    mapping = f"mapping:{FIXTURES / 'custom-mapping.toml'}"
    runner.invoke(
        main, ["ingest", str(FIXTURES / "custom-runs.json"), "--lake", lake, "--format", mapping]
    )
    payload = stats_payload(runner, lake)
    golden = GOLDEN / "stats_fixtures.json"
    if os.environ.get("T2S_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    assert payload == json.loads(golden.read_text())
    table = runner.invoke(main, ["stats", "--lake", lake])
    assert table.exit_code == 0
    for title in ("Sources", "Outcomes", "Models", "Tools", "Raw files with skipped records"):
        assert title in table.output


def test_stats_of_an_empty_lake(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(main, ["stats", "--lake", str(tmp_path / "none")])
    assert result.exit_code == 0 and "holds no trajectories" in result.output
    assert stats_payload(runner, str(tmp_path / "none"))["sources"] == []
