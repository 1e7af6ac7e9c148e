"""Coverage on the fixture lake, whose right answers are worked out in fixture.py."""

import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.lake import Lake
from pipeline.report.coverage import CoverageError, coverage

from . import fixture


@pytest.fixture(scope="module")
def held_out(fixture_lake):
    return coverage(fixture_lake, where=fixture.HELD_OUT_WHERE, thin=2)


def _by(cov, outcome, dimension):
    rows = cov.by.filter((pl.col("outcome") == outcome) & (pl.col("dimension") == dimension))
    return {r["value"]: (r["n_covered"], r["n_trajectories"]) for r in rows.iter_rows(named=True)}


def test_failed_runs_covered_by_every_dimension(held_out):
    assert _by(held_out, "failure", "all") == {"all": (3, 6)}
    assert _by(held_out, "failure", "source") == {"airline": (3, 3), "retail": (0, 3)}
    assert _by(held_out, "failure", "model") == {"gpt-4o": (2, 4), "claude": (1, 2)}
    assert _by(held_out, "failure", "task") == {
        "t1": (2, 2),
        "t2": (1, 1),
        "t3": (0, 2),
        "t4": (0, 1),
    }
    assert _by(held_out, "failure", "tool") == {
        "get_user": (2, 2),
        "update_reservation": (2, 2),
        "search_flights": (1, 1),
        "cancel_order": (0, 1),
        "get_order": (0, 1),
        "(no tool call)": (0, 1),
    }


def test_successful_runs_that_reached_the_skill(held_out):
    assert _by(held_out, "success", "all") == {"all": (1, 2)}
    assert _by(held_out, "success", "source") == {"airline": (1, 1), "retail": (0, 1)}


def test_why_a_run_is_not_covered(held_out):
    status = dict(held_out.trajectories.select("trajectory_id", "status").iter_rows())
    assert status == {
        "T1": "covered",
        "T2": "covered",
        "T3": "covered",
        "T4": "dropped",
        "T5": "no_lessons",
        "T6": "covered",
        "T7": "dropped",
        "T8": "not_in_run",
    }


def test_fate_of_every_lesson(held_out):
    fate = {r["lesson_id"]: r for r in held_out.fate.iter_rows(named=True)}
    assert fate["L1a"]["fate"] == "merged" and fate["L1a"]["statements"] == ["SKILL.md:3"]
    assert fate["L2a"]["fate"] == "deduplicated"
    assert fate["L2a"]["representative_lesson_id"] == "L1a"
    assert fate["L2b"]["fate"] == "merged"  # a semantic member, merged into C1's statement
    assert fate["L6a"]["statements"] == ["references/workflows.md:2"]
    assert (fate["L4a"]["dropped_stage"], fate["L4a"]["dropped_node_id"]) == ("merge", "N1")
    assert fate["L1b"]["dropped_reason"] == "confidence 0.3 below 0.5"
    assert fate["L4b"]["fate"] == "unaccounted"
    assert "L8a" not in fate  # never read by the run
    summary = held_out.fate_summary.select("fate", "stage", "n_lessons").rows()
    assert summary == [
        ("merged", "", 4),
        ("deduplicated", "", 1),
        ("dropped", "support", 2),
        ("dropped", "merge", 1),
        ("unaccounted", "", 1),
    ]
    assert any("no drop row says why" in w and "L4b" in w for w in held_out.warnings)


def test_support_of_each_statement(held_out):
    rows = {(r["file"], r["line_no"]): r for r in held_out.statements.iter_rows(named=True)}
    line3 = rows[("SKILL.md", 3)]
    assert (
        line3["n_lessons"],
        line3["n_trajectories"],
        line3["n_failures"],
        line3["n_models"],
    ) == (3, 2, 2, 2)
    assert not line3["is_thin"]
    assert rows[("SKILL.md", 6)]["is_thin"] and rows[("SKILL.md", 6)]["n_trajectories"] == 1
    assert rows[("references/workflows.md", 2)]["n_successes"] == 1
    assert rows[("SKILL.md", 4)]["evidence"] == "base" and not rows[("SKILL.md", 4)]["is_thin"]
    assert rows[("references/workflows.md", 1)]["evidence"] == "heading"
    assert rows[("SKILL.md", 7)]["evidence"] == "none"
    assert held_out.summary["statements_without_evidence"] == 1
    assert any("without a lesson behind them: 1" in w for w in held_out.warnings)


def test_thin_sections_follow_the_threshold(fixture_lake, held_out):
    thin = held_out.sections.filter(pl.col("is_thin")).select("file", "section").rows()
    assert thin == [("SKILL.md", "Search"), ("references/workflows.md", "Changing a flight")]
    strict = coverage(fixture_lake, where=fixture.HELD_OUT_WHERE, thin=3)
    assert strict.sections.filter(pl.col("is_thin")).height == 3
    assert strict.summary["statements_thin"] == 3
    loose = coverage(fixture_lake, where=fixture.HELD_OUT_WHERE, thin=1)
    assert loose.summary["statements_thin"] == 0 and loose.summary["sections_thin"] == 0


def test_drift_on_a_held_out_split(held_out):
    d = held_out.drift
    assert d is not None and d.origin == "where: source = 'airline-new'"
    matched = dict(d.lessons.select("lesson_id", "is_matched").iter_rows())
    assert matched == {"LH1": True, "LH2": False, "LH3": True}
    best = dict(d.lessons.select("lesson_id", "best_cluster_id").iter_rows())
    assert best["LH1"] == "C2" and best["LH3"] == "C5"
    s = d.summary
    assert (s["n_lessons"], s["n_lessons_matched"], s["n_failures"], s["n_failures_matched"]) == (
        3,
        2,
        2,
        1,
    )
    assert s["redistill"] and s["n_targets"] == 3


def test_drift_against_a_new_batch(fixture_lake, new_batch):
    cov = coverage(fixture_lake, against=new_batch)
    assert cov.drift.summary["n_lessons_matched"] == 2 and cov.drift.summary["n_lessons"] == 3
    assert cov.drift.origin == f"against: {new_batch.uri}"
    # nothing held out of this lake: the held-out runs count as runs not read by the run
    assert _by(cov, "failure", "all") == {"all": (3, 8)}
    assert cov.summary["drift"]["redistill"]


def test_threshold_moves_the_verdict(fixture_lake):
    lenient = coverage(fixture_lake, where=fixture.HELD_OUT_WHERE, match_threshold=0.05)
    assert lenient.drift.summary["n_lessons_matched"] == 3
    assert not lenient.drift.summary["redistill"]


def test_older_run_by_id(fixture_lake):
    cov = coverage(fixture_lake, run_id="r0", where=fixture.HELD_OUT_WHERE)
    assert cov.run["run_id"] == "r0"
    assert _by(cov, "failure", "all") == {"all": (2, 6)}
    status = dict(cov.trajectories.select("trajectory_id", "status").iter_rows())
    assert status["T3"] == "dropped" and status["T4"] == "not_in_run"
    assert cov.drift.summary["n_targets"] == 1


def test_run_by_skill_folder(fixture_lake, skill_dir):
    cov = coverage(fixture_lake, skill=skill_dir)
    assert cov.run["run_id"] == "r1"
    assert not any("differ" in w for w in cov.warnings)


def test_edited_skill_folder_is_flagged(fixture_lake, skill_dir, tmp_path):
    copy = tmp_path / "skill"
    shutil.copytree(skill_dir, copy)
    (copy / "SKILL.md").write_text("# Rewritten by hand\n")
    cov = coverage(fixture_lake, run_id="r1", skill=copy)
    assert any("7 of 9 recorded lines differ" in w for w in cov.warnings)
    (copy / "references" / "workflows.md").unlink()
    cov = coverage(fixture_lake, run_id="r1", skill=copy)
    assert any("missing: references/workflows.md" in w for w in cov.warnings)


def test_a_skill_folder_is_reported_on_the_run_it_names_or_not_at_all(
    fixture_lake, skill_dir, tmp_path
):
    def naming(run: str) -> Path:
        folder = tmp_path / run / "skill"
        shutil.copytree(skill_dir, folder)
        body = (folder / "SKILL.md").read_text()
        meta = f"---\nname: skill\ndescription: d\nmetadata:\n  consolidation-run: {run}\n---\n"
        (folder / "SKILL.md").write_text(meta + body)
        return folder

    assert coverage(fixture_lake, skill=naming("r0")).run["run_id"] == "r0"  # not the newest, r1
    with pytest.raises(
        CoverageError, match=r"SKILL.md names consolidation run 'r9' .*which has no row in"
    ):
        coverage(fixture_lake, skill=naming("r9"))


def test_leaked_held_out_runs_are_flagged(fixture_lake):
    cov = coverage(fixture_lake, where="trajectory_id in ('T1', 'H1')")
    assert any("held-out runs were read" in w for w in cov.warnings)
    assert "T1" not in cov.trajectories["trajectory_id"].to_list()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_id": "nope"}, "no consolidation run 'nope'.*known: r1, r0"),
        ({"skill": "/no/such/skill"}, "wrote /no/such/skill"),
        ({"where": "no_such_column = 1"}, "not a condition on trajectories"),
        ({"where": "1 = 1; drop view trajectories"}, "one condition"),
        ({"where": "source = 'nowhere'"}, "selects no trajectory"),
        ({"where": "true", "against": "/x"}, "not both"),
    ],
)
def test_bad_requests_say_what_to_do(fixture_lake, kwargs, message):
    with pytest.raises(CoverageError, match=message):
        coverage(fixture_lake, **kwargs)


def test_a_lake_without_consolidation(lake, tmp_path):
    fixture.build(lake, tmp_path / "skill", only_held_out=True)
    with pytest.raises(CoverageError, match="no consolidation run.*consolidate"):
        coverage(lake)


def test_against_a_lake_without_lessons(fixture_lake, tmp_path):
    other = Lake(tmp_path / "other")
    rows = fixture.frame(
        "trajectories",
        [
            {
                "trajectory_id": "X1",
                "source": "s",
                "outcome": "failure",
                "outcome_origin": "source",
                "meta": "{}",
            }
        ],
    )
    other.write_part("trajectories", rows, part="a", partition={"source": "s"})
    with pytest.raises(CoverageError, match="no lessons.*analyse"):
        coverage(fixture_lake, against=other)


def test_tables_and_json_round_trip(held_out, tmp_path):
    written = held_out.write(tmp_path / "cov")
    names = {p.name for p in written}
    assert {
        "coverage_by.parquet",
        "lesson_fate.parquet",
        "drift_lessons.parquet",
        "summary.json",
    } <= names
    back = pl.read_parquet(tmp_path / "cov" / "coverage_by.parquet")
    assert back.equals(held_out.by)
    payload = held_out.to_json()
    assert payload["summary"]["failures_covered"] == 3 and payload["summary"]["failures"] == 6
