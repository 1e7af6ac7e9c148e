"""`distill` end to end over the demo data, offline, as `make distill` runs it."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.lake import Lake
from pipeline.skill.lint import lint_skill
from tests.conftest import DATA

AIRLINE = DATA / "tau-bench-airline"


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    lake, out = root / "lake", root / "out" / "airline-agent-policy"
    args = [
        "distill", str(AIRLINE / "gpt-4o-airline.json"), "--lake", str(lake),
        "--base-skill", str(AIRLINE / "base-skill"), "--out", str(out),
        "--where", "source = 'tau-bench-airline'",
    ]  # fmt: skip
    first = CliRunner().invoke(main, args)
    second = CliRunner().invoke(main, args)
    return Lake(lake), out, first, second


def test_writes_a_lint_clean_deepened_skill(distilled):
    lake, out, first, _ = distilled
    assert first.exit_code == 0, first.output
    assert lint_skill(out) == []
    text = (out / "SKILL.md").read_text()
    base = (AIRLINE / "base-skill" / "SKILL.md").read_text()
    for heading in ("## Book flight", "## Modify flight", "## Cancel flight", "## Refund"):
        assert heading in base and heading in text
    assert len(text) > len(base)
    assert (out.parent / "airline-agent-policy.report.html").is_file()


def test_every_added_statement_has_provenance(distilled):
    lake, out, _, _ = distilled
    lines = lake.read("skill_lines")
    added = lines.filter(pl.col("origin") != "base")
    assert added.height > 20
    assert added.filter(pl.col("lesson_ids").list.len() == 0).height == 0
    assert added.filter(pl.col("n_trajectories") < 2).height == 0  # --min-support 2
    lessons = set(lake.read("lessons")["lesson_id"].to_list())
    cited = set(added["lesson_ids"].explode().to_list())
    assert cited <= lessons
    # every added line of the written files is in skill_lines
    for path in [out / "SKILL.md", *sorted((out / "references").glob("*.md"))]:
        rel = path.relative_to(out).as_posix()
        recorded = set(lines.filter(pl.col("file") == rel)["text"].to_list())
        assert recorded, rel


def test_rerun_resumes_and_writes_the_same_skill(distilled):
    lake, out, first, second = distilled
    assert second.exit_code == 0, second.output
    assert "0 to analyse" in second.output
    runs = lake.read("consolidations")
    assert runs["run_id"].n_unique() == 1


def test_distill_from_python_gives_each_stage_its_options(tmp_path):
    from pipeline.distill import NothingToDistill, distill

    lake, out = Lake(tmp_path / "lake"), tmp_path / "out" / "airline-agent-policy"
    seen = []
    done = distill(
        lake,
        [AIRLINE / "gpt-4o-airline.json"],
        base_skill=AIRLINE / "base-skill",
        report=False,
        ingest={"source": "airline-py"},
        analyse={"options": {"max_lessons": 1}},
        consolidate={"out_dir": out, "min_support": 3},
        on_stage=lambda name, summary: seen.append(name),
    )
    assert seen == ["ingest", "analyse", "consolidate"] and done.exit_code == 0
    assert set(lake.read("trajectories")["source"]) == {"airline-py"}
    per_run = lake.read("lessons").group_by("trajectory_id").len()["len"]
    assert per_run.max() == 1  # the analyst's option reached it
    settings = lake.read("consolidations")["settings"][0]
    assert '"min_support": 3' in settings and done.consolidated.out_dir == out
    assert done.report is None and lint_skill(out) == []
    from pipeline.settings import SettingsError

    with pytest.raises(SettingsError, match=r"unknown setting\(s\) \['fan_out'\]"):
        distill(lake, consolidate={"fan_out": 3}, report=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(NothingToDistill, match="nothing to distill"):
        distill(Lake(tmp_path / "other"), [empty], report=False)


def test_when_every_analysis_fails_distill_says_so_and_exits_3(tmp_path, loopback, monkeypatch):
    """A model that answers nothing usable: every run is an error row, no skill is written, and
    the message says a rerun retries them (not that the filter matched nothing)."""
    monkeypatch.setenv("OPENAI_API_KEY", "loopback-key")
    loopback.responder = lambda request: "no JSON here"
    out = tmp_path / "out" / "airline-agent-policy"
    settings = tmp_path / "models.toml"
    settings.write_text("[model]\nmax_retries = 0\ntimeout_s = 5.0\n")
    result = CliRunner().invoke(main, [
        "distill", str(AIRLINE / "gpt-4o-airline.json"), "--lake", str(tmp_path / "lake"),
        "--where", "task_id = '1'", "--model", "m", "--base-url", loopback.url,
        "--settings", str(settings), "--out", str(out), "--no-report",
    ])  # fmt: skip
    assert result.exit_code == 3, result.output
    assert (
        "no lessons to consolidate: the analysis of 4 run(s) ended as error rows" in result.output
    )
    assert "a rerun retries them" in result.output and not out.exists()
    errors = Lake(tmp_path / "lake").read("analyses")
    assert errors.height == 4 and set(errors["status"]) == {"error"}
