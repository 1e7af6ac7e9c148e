import numpy as np
import polars as pl

import pipeline.consolidate.parallel as parallel
from pipeline import sql
from pipeline.console import Console
from pipeline.consolidate.conflicts import Item
from pipeline.consolidate.outcome import MergeOutcome, empty_dropped
from pipeline.consolidate.run import consolidate
from pipeline.consolidate.write import apply_outcome
from pipeline.skill.folder import load_skill
from pipeline.skill.patch import PatchOp
from tests.conftest import DATA
from tests.consolidate.conftest import write_lake

BASE = DATA / "tau-bench-airline" / "base-skill"


def test_an_op_whose_anchor_is_missing_is_reported_and_logged(
    lake, tmp_path, fixture_rows, monkeypatch, capsys
):
    write_lake(lake, fixture_rows)
    real = parallel.render_patch

    def misplaced(items, layout):
        ops = real(items, layout)
        first = next(o for o in ops if o.op == "append" and o.item)
        first.section = "No such section"
        return ops

    monkeypatch.setattr(parallel, "render_patch", misplaced)
    s = consolidate(
        lake, base_skill=BASE, out_dir=tmp_path / "airline-agent-policy", console=Console(1)
    )
    assert s.op_status["anchor_missing"] == 1 and s.lint_ok
    ops = lake.read("patch_ops").filter(pl.col("status") == "anchor_missing")
    assert ops.height == 1 and "No such section" in ops["message"][0]
    assert "anchor_missing" in capsys.readouterr().err
    # its statement still reached the skill through its reference entry, so nothing is dropped
    assert set(lake.read("dropped")["stage"]) == {"support", "merge"}


def test_a_statement_none_of_whose_ops_applied_is_dropped_at_apply(lake, fixture_rows):
    lessons = write_lake(lake, fixture_rows)
    con = sql.connect(lake)
    from pipeline.consolidate.dedupe import lesson_facts

    facts = lesson_facts(con)
    members = lessons.select(
        "lesson_id",
        cluster_id=pl.lit("c1"),
        stage=pl.lit("exact"),
        representative_lesson_id="lesson_id",
        similarity=pl.lit(1.0),
    )
    it = Item(
        item_id="i1",
        section="Book flight",
        kind="workflow",
        op="add",
        title="T",
        detail="",
        cluster_ids=("c1",),
        runs=np.array([0]),
        n_lessons=members.height,
    )
    outcome = MergeOutcome(
        clusters=pl.DataFrame(),
        members=members,
        dropped=empty_dropped(),
        nodes=[],
        edges=[],
        items=[it],
        item_node={"i1": "n1"},
        n_ops=1,
        patch=[
            PatchOp(
                "insert_after",
                "SKILL.md",
                section="Book flight",
                anchor="not there",
                text="- T",
                item="i1",
            )
        ],
    )
    w = apply_outcome(con, load_skill(BASE), outcome, facts)
    assert w.patch_ops["status"].to_list() == ["anchor_missing"]
    assert w.dropped.height == members.height and set(w.dropped["stage"]) == {"apply"}
    assert (
        "insert_after anchor_missing" in w.dropped["reason"][0] and w.dropped["node_id"][0] == "n1"
    )
    assert w.skill_lines.filter(pl.col("origin") == "added").height == 0
