"""Formats and analysts from installed packages: the examples in tests/extensions, installed as a
distribution's entry points, ingested and analysed through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.analyse import registry
from pipeline.analyse.run import AnalyseError, analyse
from pipeline.cli import main
from pipeline.ingest import formats
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake

EXAMPLES = Path(__file__).parent / "extensions"

ENTRY_POINTS = """\
[trace2skill.formats]
shout-log = shout_log

[trace2skill.analysts]
tool-counter = tool_counter:ToolCounter
"""

SHOUTS = """\
RUN r1 task=find-todo outcome=success
USER find the TODO
CALL grep TODO src/
RESULT src/a.py:3: # TODO
SAY It is in src/a.py.
END
RUN r2 task=find-todo outcome=failure
USER find the TODO
CALL ls src/
RESULT a.py b.py
CALL grep TODO lib/
RESULT grep: lib/: No such file or directory
CALL grep -r TODO .
RESULT (no output)
SAY There is none.
END
"""


def install(site: Path, entry_points: str) -> None:
    """A distribution as pip leaves it: a dist-info folder with its metadata on sys.path."""
    info = site / "t2s_examples-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: t2s-examples\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def installed(tmp_path, monkeypatch):
    install(tmp_path / "site", ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    formats.adapters.cache_clear()
    yield
    formats.adapters.cache_clear()  # later tests see the built-ins alone


def test_built_ins_come_first_in_detection_order(installed):
    names = formats.names()
    assert names[:4] == ["phoenix", "langsmith", "parquet", "tau-bench"]
    assert names[-2:] == ["shout-log", "mapping:FILE"]
    assert ".shout" in formats.suffixes()
    assert registry.available() == ["miner", "single", "agentic", "tool-counter"]


def test_an_installed_format_and_analyst_through_the_command_line(installed, tmp_path):
    runs = tmp_path / "shouts"
    runs.mkdir()
    (runs / "today.shout").write_text(SHOUTS)
    (runs / "notes.md").write_text("not a run")
    lake = tmp_path / "lake"
    cli = CliRunner()

    ingested = cli.invoke(main, ["ingest", str(runs), "--lake", str(lake)])
    assert ingested.exit_code == 0, ingested.output
    trajectories = Lake(lake).read("trajectories").sort("native_id")
    assert trajectories["native_id"].to_list() == ["r1", "r2"]
    assert trajectories["format"].to_list() == ["shout-log", "shout-log"]
    assert trajectories["outcome"].to_list() == ["success", "failure"]
    assert trajectories["n_steps"].to_list() == [4, 8]
    steps = Lake(lake).read("steps")
    assert steps.filter(steps["kind"] == "tool_call")["tool_name"].sort().to_list() == [
        "grep", "grep", "grep", "ls",
    ]  # fmt: skip

    analysed = cli.invoke(main, ["analyse", "--lake", str(lake), "--analyst", "tool-counter"])
    assert analysed.exit_code == 0, analysed.output
    lessons = Lake(lake).read("lessons").sort("title")
    assert lessons["analyst"].to_list() == ["tool-counter", "tool-counter"]
    assert lessons["title"].to_list() == ["grep was called 1 time(s)", "grep was called 2 time(s)"]
    assert lessons["kind"].to_list() == ["success_lesson", "failure_lesson"]
    analyses = Lake(lake).read("analyses")
    assert analyses["status"].to_list() == ["ok", "ok"]
    assert set(analyses["prompt_version"]) == {"tool-counter-1"}

    again = cli.invoke(main, ["analyse", "--lake", str(lake), "--analyst", "tool-counter"])
    assert again.exit_code == 0 and Lake(lake).read("lessons").height == 2  # nothing redone


def test_an_installed_analysts_options_and_offline_nature(installed, tmp_path):
    lake = Lake(tmp_path / "lake")
    cli = CliRunner()
    (tmp_path / "today.shout").write_text(SHOUTS)
    assert (
        cli.invoke(main, ["ingest", str(tmp_path / "today.shout"), "--lake", lake.uri]).exit_code
        == 0
    )

    summary = analyse(lake, analyst="tool-counter", options={"tool": "ls"})
    assert summary.n_lessons == 1
    with pytest.raises(AnalyseError, match="tool is an option of the tool-counter analyst"):
        analyse(lake, analyst="miner", options={"tool": "ls"})
    with_model = cli.invoke(
        main, ["analyse", "--lake", lake.uri, "--analyst", "tool-counter", "--model", "m"]
    )
    assert with_model.exit_code == 1 and "tool-counter analyst runs offline" in with_model.output
    unknown = cli.invoke(main, ["analyse", "--lake", lake.uri, "--analyst", "nope"])
    assert unknown.exit_code == 2 and "miner, single, agentic, tool-counter" in unknown.output


def test_a_broken_installed_format_is_named(tmp_path, monkeypatch):
    install(tmp_path / "site", "[trace2skill.formats]\nbroken = no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    formats.adapters.cache_clear()
    try:
        with pytest.raises(formats.FormatError, match="cannot load format 'broken'"):
            formats.names()
    finally:
        formats.adapters.cache_clear()


def test_an_analyst_without_the_protocol_is_refused(tmp_path, monkeypatch):
    install(tmp_path / "site", "[trace2skill.analysts]\nbare = builtins:object\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(AnalyseError, match="lacks name, model"):
        registry.build("bare", options={}, base_skill=None, model_settings=None, console=None)


def test_a_new_version_of_an_installed_format_reads_its_files_again(installed, tmp_path):
    runs = tmp_path / "shouts"
    runs.mkdir()
    (runs / "today.shout").write_text(SHOUTS)
    lake = Lake(tmp_path / "lake")
    assert ingest_paths(lake, [runs]).files[0].status == "ingested"
    assert ingest_paths(lake, [runs]).files[0].status == "unchanged"
    meta = tmp_path / "site" / "t2s_examples-0.1.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("Version: 0.1", "Version: 0.2"))
    assert ingest_paths(lake, [runs]).files[0].status == "replaced"
