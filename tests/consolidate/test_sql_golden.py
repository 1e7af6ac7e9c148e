"""Each consolidation query's output on the fixture lake, against a golden file.

Regenerate after an intended change with `make golden` (T2S_UPDATE_GOLDEN=1).
"""

import os

import polars as pl
import pytest

from pipeline import sql
from pipeline.consolidate.clusters import build_clusters
from pipeline.consolidate.dedupe import cluster_lessons, lesson_facts
from pipeline.consolidate.settings import Thresholds
from pipeline.llm.embed import get_embedder
from tests.conftest import ROOT
from tests.consolidate.conftest import write_lake

GOLDEN = ROOT / "tests" / "golden" / "consolidate"


def check_golden(name: str, df: pl.DataFrame) -> None:
    path = GOLDEN / f"{name}.csv"
    flat = df.with_columns(
        [pl.col(c).list.join("|") for c, t in df.schema.items() if isinstance(t, pl.List)]
    )
    if os.environ.get("T2S_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        flat.write_csv(path)
        pytest.skip(f"wrote {path}")
    assert path.exists(), f"no golden file {path}: run `make golden`"
    want = pl.read_csv(path, infer_schema=False)
    got = pl.read_csv(flat.write_csv().encode(), infer_schema=False)
    assert got.equals(want), f"{name} differs from {path}"


@pytest.fixture
def fixture(lake, fixture_rows):
    write_lake(lake, fixture_rows)
    con = sql.connect(lake)
    facts = lesson_facts(con)
    return con, facts


def test_lesson_facts_golden(fixture):
    _, facts = fixture
    check_golden(
        "lesson_facts",
        facts.select(
            "trajectory_id",
            "title",
            "section",
            "norm_title",
            "negated",
            "assigns",
            "block",
            "outcome",
            "task_id",
        ).sort("trajectory_id", "title"),
    )


def test_exact_groups_golden(fixture):
    con, facts = fixture
    con.register("consolidation_lessons", facts)
    ex = sql.query(con, "consolidate_exact_groups").join(
        facts.select("lesson_id", "trajectory_id", "title"), on="lesson_id"
    )
    reps = facts.select(exact_rep_id="lesson_id", rep_title="title")
    check_golden(
        "exact_groups",
        ex.join(reps, on="exact_rep_id")
        .select("trajectory_id", "title", "rep_title", "n_exact")
        .sort("trajectory_id", "title"),
    )


def test_support_golden(fixture):
    con, facts = fixture
    c = cluster_lessons(con, facts, get_embedder(), Thresholds())
    cl = build_clusters(con, facts, c, min_support=2)
    titles = facts.select(medoid_lesson_id="lesson_id", medoid_title="title")
    check_golden(
        "support",
        cl.table.join(titles, on="medoid_lesson_id")
        .drop("cluster_id", "medoid_lesson_id", "medoid_rid")
        .sort("medoid_title"),
    )
