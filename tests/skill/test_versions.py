"""Skill versions in the lake and the diff between them, over the tau-bench demo split in two:
the first half of the runs consolidated, then all of them, into the same folder."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline import sql
from pipeline.analyse.run import analyse
from pipeline.cli import main
from pipeline.console import Console
from pipeline.consolidate.run import ConsolidateError, consolidate
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from pipeline.skill.diff import diff_statements, file_diff, normalise, run_statements
from pipeline.skill.versions import (
    VersionError,
    folder_files,
    recorded,
    resolve,
    version_id,
    version_statements,
)
from tests.conftest import DATA
from tests.consolidate.conftest import write_lake

AIRLINE = DATA / "tau-bench-airline"
BASE = AIRLINE / "base-skill"
ACTOR = "tester@ci"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    records = json.loads((AIRLINE / "gpt-4o-airline.json").read_text())
    halves = []
    for i, part in enumerate((records[:100], records[100:])):
        (root / f"half{i}").mkdir()
        halves.append(root / f"half{i}" / "airline.json")
        halves[-1].write_text(json.dumps(part))
    lake, out, console = Lake(root / "lake"), root / "skills" / "airline-agent-policy", Console(0)
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("T2S_ACTOR", ACTOR)
        for half in (*halves, None):  # the last: a rerun with nothing new
            if half is not None:
                ingest_paths(lake, [half], source="tau-bench-airline", console=console)
                analyse(lake, base_skill=BASE, console=console)
            runs.append(consolidate(lake, base_skill=BASE, out_dir=out, console=console))
    versions = recorded(lake).sort("created_at")
    return lake, out, runs, versions


def cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def statements(lake, run_id) -> pl.DataFrame:
    with sql.connect(lake) as con:
        return run_statements(con, run_id)


def diff(lake, a: str, b: str):
    with sql.connect(lake) as con:
        va, vb = resolve(lake, a), resolve(lake, b)
        return diff_statements(con, version_statements(con, va), version_statements(con, vb))


def texts(entries) -> list[str]:
    return [e["text"] for e in entries]


def test_each_published_folder_is_a_version_with_its_parent_and_run(demo):
    lake, out, runs, versions = demo
    first, second = versions.to_dicts()
    assert versions.height == 2
    assert (first["run_id"], second["run_id"]) == (runs[0].run_id, runs[1].run_id)
    assert first["parent_version_id"] is None
    assert second["parent_version_id"] == first["version_id"]
    assert {first["created_by"], second["created_by"]} == {ACTOR}
    assert first["out"] == second["out"] == str(out)
    on_disk = folder_files(out)
    assert second["version_id"] == version_id(on_disk) == resolve(lake, f"live:{out}")["version_id"]
    assert second["n_files"] == len(on_disk)
    assert second["n_statements"] == statements(lake, runs[1].run_id).height
    files = lake.read("skill_files").filter(pl.col("version_id") == second["version_id"])
    assert dict(files.select("file", "text").iter_rows()) == {
        p: data.decode() for p, data in on_disk.items()
    }
    # the first version's files outlive its folder on disk
    old = lake.read("skill_files").filter(pl.col("version_id") == first["version_id"])
    assert old.height == first["n_files"] and "SKILL.md" in old["file"].to_list()
    assert old.filter(pl.col("file") == "SKILL.md")["text"][0] != on_disk["SKILL.md"].decode()


def test_an_identical_rerun_adds_no_version(demo):
    lake, _, runs, versions = demo
    assert runs[2].run_id == runs[1].run_id
    assert lake.read("skill_versions").height == 2
    assert lake.read("skill_files").height == versions["n_files"].sum()


def test_the_diff_names_what_the_second_run_added_and_changed(demo):
    lake, _, runs, versions = demo
    v1, v2 = versions["version_id"].to_list()
    d = diff(lake, v1, v2)
    a, b = statements(lake, runs[0].run_id), statements(lake, runs[1].run_id)
    # every statement of each side is accounted for exactly once
    assert d.n_unchanged + len(d.changed) + len(d.removed) == a.height
    assert d.n_unchanged + len(d.changed) + len(d.added) == b.height
    assert "- Call think before cancel_reservation" in texts(d.added)
    think = next(s for s in d.added if s["text"] == "- Call think before cancel_reservation")
    assert think["section"] == "Cancel flight"
    assert (think["n_trajectories"], think["n_failures"]) == (2, 2)
    changed = {c["old"]["text"]: c for c in d.changed}
    handoff = changed[
        "- Complete cancel_reservation, book_reservation yourself instead of handing off with "
        "transfer_to_human_agents"
    ]
    assert handoff["new"]["text"] == (
        "- Complete cancel_reservation yourself instead of handing off with "
        "transfer_to_human_agents"
    )
    assert handoff["matched_by"] == "lessons" and handoff["jaccard"] >= 0.5
    assert (handoff["old"]["n_trajectories"], handoff["new"]["n_trajectories"]) == (3, 4)
    # added statements are new to the second run's lines; the base skill's lines never show
    first_texts = {normalise(t) for t in a["text"].to_list()}
    assert all(normalise(t) not in first_texts for t in texts(d.added))
    assert all(s["origin"] != "base" for s in d.added + d.removed)
    # backwards, what was added is removed
    back = diff(lake, v2, v1)
    assert sorted(texts(back.removed)) == sorted(texts(d.added)) and not back.added
    assert len(back.changed) == len(d.changed)


def test_diff_command_by_prefix_and_json(demo):
    lake, out, _, versions = demo
    v1, v2 = versions["version_id"].to_list()
    payload = json.loads(cli("diff", "--lake", lake.uri, v1[:6], v2[:8], "--json").stdout)
    assert (payload["a"]["version_id"], payload["b"]["version_id"]) == (v1, v2)
    d = diff(lake, v1, v2)
    assert payload["counts"] == d.counts()
    added = next(
        s for s in payload["added"] if s["text"].endswith("Call think before cancel_reservation")
    )
    assert added["section"] == "Cancel flight"
    assert added["evidence"] == {"runs": 2, "tasks": 1, "failures": 2, "successes": 0, "lessons": 2}
    assert set(payload["changed"][0]) == {"old", "new", "matched_by", "jaccard"}
    relative = json.loads(
        cli("diff", "--lake", lake.uri, "previous", "latest", "--out", out, "--json").stdout
    )
    assert relative["counts"] == payload["counts"] and relative["b"]["version_id"] == v2
    shown = cli("diff", "--lake", lake.uri, v1[:6], f"live:{out}", "--files").stdout
    assert "+ - Call think before cancel_reservation" in shown
    assert f"+++ {v2[:8]}/SKILL.md" in shown


def test_html_page_escapes_what_statements_hold(demo, tmp_path):
    lake, _, _, versions = demo
    v1, v2 = versions["version_id"].to_list()
    page = tmp_path / "diff.html"
    cli("diff", "--lake", lake.uri, v1, v2, "--html", page, "--files")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert 'class="stmt added"' in html and 'class="stmt changed"' in html
    # the miner writes placeholders as `\<id>`: on the page they must read, not open a tag
    assert "not available on date \\&lt;date&gt;" in html
    assert "\\<date>" not in html


def test_versions_command_counts_against_the_parent(demo):
    lake, out, _, versions = demo
    listed = json.loads(cli("versions", "--lake", lake.uri, "--out", out, "--json").stdout)
    v1, v2 = versions["version_id"].to_list()
    assert [v["version_id"] for v in listed] == [v2, v1]
    assert listed[0]["against_parent"] == diff(lake, v1, v2).counts()
    assert listed[1]["against_parent"] is None
    table = cli("versions", "--lake", lake.uri).stdout
    assert v2[:8] in table and v1[:8] in table
    elsewhere = cli("versions", "--lake", lake.uri, "--out", "elsewhere", "--json").stdout
    assert json.loads(elsewhere) == []


def test_names_that_do_not_resolve_are_refused(demo, tmp_path):
    lake, out, _, versions = demo
    v1 = versions["version_id"][0]
    with pytest.raises(VersionError, match="no version"):
        resolve(lake, "zzzz")
    with pytest.raises(VersionError, match="no versions recorded at"):
        resolve(lake, "previous", str(tmp_path / "x"))
    assert resolve(lake, "previous", str(out))["version_id"] == v1
    result = CliRunner().invoke(main, ["diff", "--lake", lake.uri, "zzzz", "latest"])
    assert result.exit_code != 0 and "no version 'zzzz'" in result.output


ROWS = [
    *({"trajectory_id": f"r{i}", "title": "Check the membership tier first"} for i in range(3)),
    *(
        {"trajectory_id": f"r{i}", "title": "Pass cabin=economy", "section": "Modify flight"}
        for i in (1, 2)
    ),
]


def test_a_rejected_folder_records_no_version(lake, tmp_path):
    write_lake(lake, ROWS)
    out = tmp_path / "skills" / "airline-agent-policy"
    consolidate(lake, base_skill=BASE, out_dir=out)
    before = lake.read("skill_versions")
    bad = tmp_path / "base"
    shutil.copytree(BASE, bad)
    (bad / "references").mkdir()
    (bad / "references" / "orphan.md").write_text("# Orphan\n\nnot linked\n")
    with pytest.raises(ConsolidateError, match="failed lint"):
        consolidate(lake, base_skill=bad, out_dir=out)
    assert lake.read("skill_versions").equals(before) and before.height == 1
    assert before["version_id"][0] == version_id(folder_files(out))


def test_a_folder_found_at_out_becomes_the_parent(lake, tmp_path):
    write_lake(lake, ROWS)
    out = tmp_path / "airline-agent-policy"
    shutil.copytree(BASE, out)  # written by hand, or before versions were recorded
    found = version_id(folder_files(out))
    s = consolidate(lake, base_skill=BASE, out_dir=tmp_path / "airline-agent-policy")
    versions = recorded(lake).sort("created_at").to_dicts()
    assert [v["version_id"] for v in versions][0] == found
    assert (versions[0]["run_id"], versions[0]["created_by"]) == (None, None)
    assert (versions[1]["parent_version_id"], versions[1]["run_id"]) == (found, s.run_id)
    d = diff(lake, found, versions[1]["version_id"])  # the found one's statements: its lines
    assert not d.removed and not d.changed
    assert "Check the membership tier first" in " ".join(texts(d.added))


def test_version_ids_and_file_diff():
    files = {"SKILL.md": b"# A\n", "references/b.md": b"x\n"}
    assert version_id(files) == version_id(dict(reversed(files.items())))
    assert version_id(files) != version_id(files | {"references/b.md": b"y\n"})
    assert version_id(files) != version_id({"SKILL.md": b"# A\n", "references/c.md": b"x\n"})
    patch = file_diff({"SKILL.md": "a\nb\n"}, {"SKILL.md": "a\nc\n", "new.md": "n"}, "v1", "v2")
    assert "--- v1/SKILL.md\n+++ v2/SKILL.md\n" in patch and "-b\n+c\n" in patch
    assert "--- /dev/null\n+++ v2/new.md\n" in patch and patch.endswith("+n\n")


def test_export_writes_any_run_s_folder_from_the_lake(demo, tmp_path):
    lake, out, runs, versions = demo
    first = versions.row(0, named=True)
    elsewhere = tmp_path / "old" / "airline-agent-policy"
    done = cli("export", runs[0].run_id, "--lake", lake.uri, "--out", elsewhere)
    assert f"skill: {elsewhere}/SKILL.md" in done.output
    assert version_id(folder_files(elsewhere)) == first["version_id"]  # the first run's folder
    assert version_id(folder_files(out)) == versions["version_id"][1]  # OUT untouched
    missing = CliRunner().invoke(main, ["export", "nope", "--lake", str(lake.uri)])
    assert missing.exit_code == 1 and "no consolidation run 'nope'" in missing.output
