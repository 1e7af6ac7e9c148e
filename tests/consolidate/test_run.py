import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline import schemas
from pipeline.console import Console
from pipeline.consolidate.run import ConsolidateError, consolidate
from pipeline.consolidate.settings import SettingsError
from pipeline.consolidate.synth import write_synthetic
from pipeline.settings import ModelSettings
from pipeline.skill.folder import SkillError
from pipeline.skill.lint import lint_skill
from tests.conftest import DATA
from tests.consolidate.conftest import write_lake

BASE = DATA / "tau-bench-airline" / "base-skill"
TABLES = [
    "consolidations",
    "clusters",
    "cluster_members",
    "merge_nodes",
    "merge_edges",
    "patch_ops",
    "skill_lines",
    "dropped",
]


@pytest.fixture(scope="module")
def synthetic_lake(tmp_path_factory):
    from pipeline.lake import Lake

    lake = Lake(tmp_path_factory.mktemp("synthetic") / "lake")
    write_synthetic(lake, 3000, seed=2)
    return lake


@pytest.fixture(scope="module")
def deepened(synthetic_lake, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "airline-agent-policy"
    s = consolidate(synthetic_lake, base_skill=BASE, out_dir=out)
    return synthetic_lake, s


def run_rows(lake, table, run_id):
    return lake.read(table).filter(pl.col("run_id") == run_id)


def test_deepens_the_base_skill_into_a_lint_clean_folder(deepened):
    lake, s = deepened
    assert s.lint_ok and s.name == "airline-agent-policy" and s.out_dir.name == s.name
    assert lint_skill(s.out_dir) == []
    text = (s.out_dir / "SKILL.md").read_text()
    base = (BASE / "SKILL.md").read_text()
    for line in base.splitlines()[4:]:  # every base line survives (frontmatter aside)
        assert line in text
    assert text.count("\n") < 500 and "consolidation-run: " + s.run_id in text
    assert (BASE / "SKILL.md").read_text() == base  # the base is never written
    assert sorted(p.name for p in (s.out_dir / "references").iterdir()) == [
        "book-flight.md",
        "cancel-flight.md",
        "domain-basic.md",
        "modify-flight.md",
        "refund.md",
    ]


def test_every_added_line_has_provenance(deepened):
    lake, s = deepened
    lines = run_rows(lake, "skill_lines", s.run_id)
    added = lines.filter(pl.col("origin").is_in(["added", "revised"]))
    assert added.height == s.n_skill_lines > 0
    assert (added["cluster_ids"].list.len() > 0).all() and (
        added["lesson_ids"].list.len() > 0
    ).all()
    assert (added["n_trajectories"] >= 2).all() and added["merge_node_id"].null_count() == 0
    base = lines.filter(pl.col("origin") == "base")
    assert (base["cluster_ids"].list.len() == 0).all() and base.filter(
        pl.col("file") == "SKILL.md"
    ).height > 30
    # line numbers point at the very line in the written file
    for row in lines.sample(40, seed=1).iter_rows(named=True):
        written = (s.out_dir / row["file"]).read_text().split("\n")
        assert written[row["line_no"] - 1] == row["text"]
    # lesson ids behind a line are members of its clusters
    members = run_rows(lake, "cluster_members", s.run_id)
    pairs = added.select("cluster_ids", "lesson_ids").explode("lesson_ids")
    assert pairs.height > 0
    one = added.row(0, named=True)
    m = members.filter(pl.col("cluster_id").is_in(one["cluster_ids"]))
    assert sorted(m["lesson_id"].to_list()) == one["lesson_ids"]


def test_evidence_notes_match_the_support_counted_in_sql(deepened):
    lake, s = deepened
    lines = run_rows(lake, "skill_lines", s.run_id).filter(
        pl.col("file").str.starts_with("references/")
        & pl.col("text").str.contains("Evidence: seen in")
    )
    assert lines.height > 0
    for row in lines.head(20).iter_rows(named=True):
        if row["n_failures"]:
            assert f"{row['n_failures']} failed run" in row["text"]
        if row["n_successes"]:
            assert f"{row['n_successes']} successful run" in row["text"]
        assert f"across {row['n_tasks']} task" in row["text"]


def test_every_lesson_is_in_the_skill_or_dropped_once(deepened, synthetic_lake):
    lake, s = deepened
    lessons = set(lake.read("lessons")["lesson_id"])
    written = set(
        run_rows(lake, "skill_lines", s.run_id).explode("lesson_ids")["lesson_ids"].drop_nulls()
    )
    dropped = run_rows(lake, "dropped", s.run_id)
    assert dropped["lesson_id"].is_unique().all()
    assert written | set(dropped["lesson_id"]) == lessons and not written & set(
        dropped["lesson_id"]
    )
    assert set(dropped["stage"]) <= {"support", "merge"} and s.n_dropped == dropped.height
    merge = dropped.filter(pl.col("stage") == "merge")
    assert (
        merge.height > 0 and merge["node_id"].null_count() == 0
    )  # the synthetic data has conflicts
    assert merge["reason"].str.contains("conflict").all()


def test_tables_are_written_valid_and_partitioned_by_run(deepened):
    lake, s = deepened
    for table in TABLES:
        df = run_rows(lake, table, s.run_id)
        assert df.height > 0, table
        schemas.validate(table, df)
    row = run_rows(lake, "consolidations", s.run_id).row(0, named=True)
    assert row["mode"] == "parallel" and row["lint_ok"] and row["n_lessons"] == 3000
    assert row["n_clusters"] == s.n_clusters and row["n_kept"] == s.n_kept and row["n_calls"] == 0
    settings = json.loads(row["settings"])
    assert settings["fan_in"] == 5 and settings["min_support"] == 2
    ops = run_rows(lake, "patch_ops", s.run_id)
    assert (ops["status"] == "applied").all() and ops["seq"].to_list() == list(range(ops.height))
    clusters = run_rows(lake, "clusters", s.run_id)
    members = run_rows(lake, "cluster_members", s.run_id)
    cited = clusters.explode("cited_lesson_ids").join(
        members,
        left_on=["cluster_id", "cited_lesson_ids"],
        right_on=["cluster_id", "lesson_id"],
        how="anti",
    )
    assert cited.height == 0


def test_rerun_replaces_its_own_rows_and_keeps_other_runs(deepened, tmp_path):
    lake, s = deepened
    again = consolidate(lake, base_skill=BASE, out_dir=s.out_dir)
    assert again.run_id == s.run_id
    assert run_rows(lake, "clusters", s.run_id).height == s.n_clusters
    other = consolidate(
        lake, base_skill=BASE, out_dir=tmp_path / "airline-agent-policy", min_support=3
    )
    assert other.run_id != s.run_id and other.n_kept < s.n_kept
    assert set(lake.read("consolidations")["run_id"]) >= {s.run_id, other.run_id}
    assert (tmp_path / "airline-agent-policy" / "SKILL.md").exists()


def test_create_mode_writes_a_new_skill(synthetic_lake, tmp_path):
    s = consolidate(synthetic_lake, out_dir=tmp_path / "synthetic-skill", max_section_items=3)
    assert s.name == "synthetic-skill" and s.out_dir == tmp_path / "synthetic-skill"
    assert lint_skill(s.out_dir) == []
    text = (s.out_dir / "SKILL.md").read_text()
    assert text.startswith("---\nname: synthetic-skill\ndescription: Lessons distilled from")
    assert "## Book flight" in text and "## Refund" in text
    lines = synthetic_lake.read("skill_lines").filter(pl.col("run_id") == s.run_id)
    assert set(lines["origin"]) == {"added"}  # headings and lead-in lines are not statements


def test_sequential_mode_is_comparable(synthetic_lake, tmp_path, deepened):
    _, par = deepened
    seq = consolidate(
        synthetic_lake, base_skill=BASE, out_dir=tmp_path / "seq", mode="sequential", batch_size=100
    )
    assert seq.lint_ok and seq.run_id != par.run_id
    assert seq.n_nodes == 30  # 3000 lessons / 100 per batch
    nodes = synthetic_lake.read("merge_nodes").filter(pl.col("run_id") == seq.run_id).sort("level")
    assert nodes["level"].to_list() == list(range(30))
    edges = synthetic_lake.read("merge_edges").filter(pl.col("run_id") == seq.run_id)
    assert edges.filter(pl.col("child_kind") == "lesson").height == 3000
    assert edges.filter(pl.col("child_kind") == "node").height == 29
    lessons = set(synthetic_lake.read("lessons")["lesson_id"])
    lines = synthetic_lake.read("skill_lines").filter(pl.col("run_id") == seq.run_id)
    dropped = synthetic_lake.read("dropped").filter(pl.col("run_id") == seq.run_id)
    written = set(lines.explode("lesson_ids")["lesson_ids"].drop_nulls())
    assert written | set(dropped["lesson_id"]) == lessons
    rows = synthetic_lake.read("consolidations").filter(
        pl.col("run_id").is_in([seq.run_id, par.run_id])
    )
    assert sorted(rows["mode"]) == ["parallel", "sequential"] and (rows["n_ops"] > 0).all()


def test_bad_requests_fail_clearly(lake, tmp_path, fixture_rows, monkeypatch):
    with pytest.raises(ConsolidateError, match="no lessons"):
        consolidate(lake, out_dir=tmp_path)
    write_lake(lake, fixture_rows)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SettingsError, match="needs an API key"):
        consolidate(lake, out_dir=tmp_path / "x", settings=ModelSettings(model="gpt-4o"))
    with pytest.raises(SettingsError, match="kebab-case"):
        consolidate(lake, out_dir=tmp_path / "Not A Name")
    with pytest.raises(SettingsError, match="differs from the folder"):
        consolidate(lake, out_dir=tmp_path / "x", name="y")
    with pytest.raises(SettingsError, match="fan-in"):
        consolidate(lake, out_dir=tmp_path, fan_in=1)
    with pytest.raises(SettingsError, match="unknown setting"):
        consolidate(lake, out_dir=tmp_path, near_treshold=0.5)
    with pytest.raises(SettingsError, match="near-threshold"):
        consolidate(lake, out_dir=tmp_path, near_threshold=1.5)
    with pytest.raises(SettingsError, match="mode"):
        consolidate(lake, out_dir=tmp_path, mode="both")
    with pytest.raises(SkillError, match="no SKILL.md"):
        consolidate(lake, out_dir=tmp_path, base_skill=tmp_path)
    base = tmp_path / "airline-agent-policy"
    shutil.copytree(BASE, base)
    with pytest.raises(SkillError, match="overlaps the base skill"):
        consolidate(lake, out_dir=base, base_skill=base)
    with pytest.raises(SkillError, match="overlaps the base skill"):
        consolidate(lake, out_dir=base / "inner", base_skill=base)
    assert (base / "SKILL.md").read_text() == (BASE / "SKILL.md").read_text()


def test_fixture_lake_outcome(lake, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    s = consolidate(lake, base_skill=BASE, out_dir=tmp_path / "airline-agent-policy")
    assert (s.n_lessons, s.n_clusters, s.n_kept) == (16, 6, 5)
    assert s.n_conflicts == 2  # cabin=economy vs business (3 vs 2), call twice vs not (2 vs 2)
    text = (s.out_dir / "SKILL.md").read_text()
    assert "- Pass cabin=economy to update_reservation_flights" in text
    assert "cabin=business" not in text.split("## Modify flight")[1].split("Learned")[0]
    assert "Runs disagree" in text  # the tie is kept as one conditional statement
    dropped = lake.read("dropped").filter(pl.col("run_id") == s.run_id).sort("stage")
    assert dropped["stage"].to_list() == ["merge", "merge", "support"]


def test_a_skill_that_fails_lint_is_kept_aside_and_the_run_fails(lake, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    base = tmp_path / "base"
    shutil.copytree(BASE, base)
    (base / "references").mkdir()
    (base / "references" / "orphan.md").write_text("# Orphan\n\nnot linked\n")
    out = tmp_path / "out" / "airline-agent-policy"
    with pytest.raises(ConsolidateError, match="unlinked-reference"):
        consolidate(lake, base_skill=base, out_dir=out)
    assert not out.exists()
    assert (out.parent / "airline-agent-policy.rejected" / "SKILL.md").exists()
    row = lake.read("consolidations").row(0, named=True)
    assert row["lint_ok"] is False


def test_the_folder_names_the_skill(lake, tmp_path, fixture_rows, capsys, monkeypatch):
    from pipeline.console import Console

    write_lake(lake, fixture_rows)
    s = consolidate(lake, base_skill=BASE, out_dir=tmp_path / "airline", console=Console(1))
    assert s.name == "airline" and s.lint_ok
    assert "name: airline\n" in (s.out_dir / "SKILL.md").read_text()
    assert "the base skill's name was 'airline-agent-policy'" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # without out_dir: out/<base skill's name>
    s = consolidate(lake, base_skill=BASE)
    assert (
        s.out_dir == Path("out") / "airline-agent-policy"
        and (tmp_path / s.out_dir / "SKILL.md").exists()
    )


def test_where_keeps_only_matching_lessons(lake, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    s = consolidate(lake, out_dir=tmp_path / "modify", where="section = 'Modify flight'")
    assert s.n_lessons == 5 and s.n_clusters == 2
    with pytest.raises(ConsolidateError, match="match --where"):
        consolidate(lake, out_dir=tmp_path, where="source = 'elsewhere'")
    with pytest.raises(ConsolidateError, match="not a valid filter on lessons"):
        consolidate(lake, out_dir=tmp_path, where="no_such_column = 1")
    with pytest.raises(ConsolidateError, match="one filter expression"):
        consolidate(lake, out_dir=tmp_path, where="true; drop table lessons")


def test_an_unknown_embedder_is_a_settings_error(lake, tmp_path, fixture_rows):
    write_lake(lake, fixture_rows)
    with pytest.raises(SettingsError, match="unknown embedder"):
        consolidate(lake, out_dir=tmp_path / "x", embedder="word2vec")


def test_a_rerun_of_the_analyst_under_new_settings_replaces_its_lessons(lake, tmp_path, capsys):
    from pipeline.analyse.run import analyse
    from pipeline.ingest.run import ingest_paths

    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps(json.loads((DATA / "tau-bench-airline/gpt-4o-airline.json")
                                          .read_text())[:60]))  # fmt: skip
    ingest_paths(lake, [runs], source="tau-bench-airline")
    analyse(lake, analyst="miner", base_skill=BASE)
    first = set(lake.read("lessons")["lesson_id"])
    analyse(lake, analyst="miner")  # no base skill: other target sections
    second = set(lake.read("lessons")["lesson_id"]) - first
    assert first and second

    s = consolidate(lake, base_skill=BASE, out_dir=tmp_path / "latest" / "airline-agent-policy",
                    console=Console(1))  # fmt: skip
    assert "lessons target sections the base skill does not have" in capsys.readouterr().err
    read = set(run_rows(lake, "cluster_members", s.run_id)["lesson_id"]) | set(
        run_rows(lake, "dropped", s.run_id)["lesson_id"]
    )
    assert s.n_lessons == len(second) and read <= second
    pooled = consolidate(lake, out_dir=tmp_path / "all" / "airline-skill", analyses="all")
    assert pooled.n_lessons == len(first) + len(second)
    with pytest.raises(SettingsError, match="analyses must be one of"):
        consolidate(lake, out_dir=tmp_path / "x", analyses="newest")


class Killed(BaseException):
    """Stands for kill -9 at one step of a run."""


def kill_at(monkeypatch, k: int) -> list[int]:
    """The k-th rename, link, folder removal or removal of lake parts raises Killed."""
    import os

    from pipeline.lake import Lake

    calls = [0]

    def step(real):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise Killed
            return real(*args, **kwargs)

        return call

    for name in ("replace", "symlink"):
        monkeypatch.setattr(os, name, step(getattr(os, name)))
    monkeypatch.setattr(shutil, "rmtree", step(shutil.rmtree))
    monkeypatch.setattr(Lake, "delete_parts", step(Lake.delete_parts))
    return calls


def leftovers(out):
    return sorted(
        p.name
        for p in out.parent.iterdir()
        if any(k in p.name for k in (".tmp-", ".old-", ".link-"))
    )


def test_a_kill_at_any_step_leaves_a_skill_whose_run_has_its_rows(tmp_path, fixture_rows):
    """OUT always holds the previous skill or the new one, and the run it names always has its
    consolidations and skill_lines rows, so coverage --skill reports that run; the next run
    cleans what the killed one left."""
    from pipeline.lake import Lake
    from pipeline.report.coverage import coverage
    from pipeline.skill.folder import folder_run

    def first_run(where):
        lake = Lake(where / "lake")
        write_lake(lake, fixture_rows)
        out = where / "skills" / "airline-agent-policy"
        return lake, out, consolidate(lake, base_skill=BASE, out_dir=out).run_id

    lake, out, _ = first_run(tmp_path / "count")
    with pytest.MonkeyPatch.context() as mp:
        calls = kill_at(mp, 0)
        second = consolidate(lake, base_skill=BASE, out_dir=out, near_threshold=0.95).run_id
    assert calls[0] > len(TABLES)
    for k in range(1, calls[0] + 1):
        lake, out, first = first_run(tmp_path / f"k{k}")
        with pytest.MonkeyPatch.context() as mp:
            kill_at(mp, k)
            with pytest.raises(Killed):
                consolidate(lake, base_skill=BASE, out_dir=out, near_threshold=0.95)
        named = folder_run(out)
        assert named in (first, second) and lint_skill(out) == [], k
        assert named in lake.read("consolidations")["run_id"].to_list(), k
        assert named in lake.read("skill_lines")["run_id"].to_list(), k
        assert coverage(lake, skill=out).run["run_id"] == named, k
        consolidate(lake, base_skill=BASE, out_dir=out, near_threshold=0.95)
        assert folder_run(out) == second and leftovers(out) == [], k


def test_a_second_consolidation_into_one_folder_is_refused_naming_it(lake, tmp_path, fixture_rows):
    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.skill.publish import writer_lock

    write_lake(lake, fixture_rows)
    out = tmp_path / "airline-agent-policy"
    with writer_lock(out):  # another consolidation is writing OUT
        with pytest.raises(SkillError, match=f"{out} is being written by another consolidation"):
            consolidate(lake, base_skill=BASE, out_dir=out)
        res = CliRunner().invoke(
            main, ["consolidate", "--lake", lake.uri, "--base-skill", str(BASE), "--out", str(out)]
        )
    assert res.exit_code != 0 and "is being written by another consolidation" in res.output
    assert "Traceback" not in res.output and not out.exists()
    assert consolidate(lake, base_skill=BASE, out_dir=out).lint_ok  # the lock is free again
