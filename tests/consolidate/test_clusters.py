import numpy as np
import polars as pl
import pytest

from pipeline import sql
from pipeline.consolidate.clusters import build_clusters, medoids
from pipeline.consolidate.dedupe import Clustering, cluster_lessons, lesson_facts
from pipeline.consolidate.settings import Thresholds
from pipeline.consolidate.summarise import (
    CitationError,
    ExtractiveSummariser,
    check_citations,
    summarise_clusters,
)
from pipeline.llm.embed import get_embedder
from tests.consolidate.conftest import write_lake

RUNS = {
    "r0": ("t0", "failure"),
    "r1": ("t0", "success"),
    "r2": ("t1", "failure"),
    "r3": ("t1", "failure"),
    "r4": ("t2", "unknown"),
    "r5": ("t2", "failure"),
    "r6": ("t3", "failure"),
    "r7": ("t3", "failure"),
    "r8": ("t3", "success"),
    "r9": ("t4", "failure"),
}


@pytest.fixture
def built(lake, fixture_rows):
    write_lake(lake, fixture_rows, RUNS)
    con = sql.connect(lake)
    facts = lesson_facts(con)
    c = cluster_lessons(con, facts, get_embedder(), Thresholds())
    return con, facts, c, build_clusters(con, facts, c, min_support=2)


def by_title(cl, facts, start: str) -> dict:
    t = cl.table.join(
        facts.select(medoid_lesson_id="lesson_id", title="title"), on="medoid_lesson_id"
    )
    rows = t.filter(pl.col("title").str.to_lowercase().str.starts_with(start.lower()))
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_support_counts_distinct_runs_tasks_and_outcomes(built):
    _, facts, _, cl = built
    check = by_title(cl, facts, "Check the membership tier")
    # r0..r5: six lessons in six runs over tasks t0, t1, t2
    assert (check["n_lessons"], check["n_trajectories"], check["n_tasks"]) == (6, 6, 3)
    assert (check["n_failures"], check["n_successes"]) == (4, 1)  # r4 is of unknown outcome
    assert check["n_models"] == 1 and check["n_analysts"] == 1 and check["kept"]
    assert check["target_section"] == "Book flight" and check["tool_name"] == "book_reservation"


def test_one_offs_are_dropped_with_their_reason(built):
    _, facts, _, cl = built
    voucher = by_title(cl, facts, "Offer a voucher")
    assert not voucher["kept"] and voucher["n_trajectories"] == 1
    d = cl.dropped
    assert d.height == 1 and d["stage"][0] == "support"
    assert "1 distinct trajectory" in d["reason"][0] and "--min-support 2" in d["reason"][0]


def test_negations_and_other_values_stay_in_their_own_clusters(built):
    _, facts, _, cl = built
    assert by_title(cl, facts, "Do not call book_reservation")["n_lessons"] == 2
    assert by_title(cl, facts, "Call book_reservation twice")["n_lessons"] == 2
    assert by_title(cl, facts, "Pass cabin=economy")["n_lessons"] == 3
    assert by_title(cl, facts, "Pass cabin=business")["n_lessons"] == 2
    assert cl.table.height == 6


def test_cluster_ids_depend_only_on_members(built, lake):
    con, facts, c, cl = built
    again = build_clusters(con, facts, cluster_lessons(con, facts, get_embedder(), Thresholds()), 2)
    assert again.table["cluster_id"].to_list() == cl.table["cluster_id"].to_list()
    assert cl.members["cluster_id"].n_unique() == cl.table.height
    assert cl.members.height == facts.height


def test_medoid_is_the_title_nearest_the_weighted_centroid():
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    reps = pl.DataFrame({"rid": [0, 1, 2, 3], "n_exact": [5, 1, 1, 1], "lesson_id": list("abcd")})
    c = Clustering(members=pl.DataFrame(), reps=reps, vectors=vectors)
    # cluster 0 = titles 0..2, cluster 1 = title 3 alone; title 0 is said five times
    assert medoids(c, np.array([0, 0, 0, 1]), 2).tolist() == [0, 3]
    reps = reps.with_columns(n_exact=pl.Series([1, 1, 1, 1]))
    c = Clustering(members=pl.DataFrame(), reps=reps, vectors=vectors)
    assert medoids(c, np.array([0, 0, 0, 1]), 2).tolist() == [1, 3]  # said once each: the middle


def test_extractive_summary_is_the_medoid_and_cites_it(built):
    con, facts, _, cl = built
    s = summarise_clusters(con, ExtractiveSummariser(), cl.table, cl.members, facts, pl.DataFrame())
    joined = s.join(cl.table, on="cluster_id")
    assert (joined["cited_lesson_ids"].list.first() == joined["medoid_lesson_id"]).all()
    medoid_titles = facts.filter(pl.col("lesson_id").is_in(joined["medoid_lesson_id"].implode()))
    assert set(s["title"]) == set(medoid_titles["title"])


class Liar:
    name, prompt_version, sample_size = "liar", "x", 0

    def summarise(self, clusters, samples):
        other = clusters["medoid_lesson_id"].reverse()
        return clusters.select(
            "cluster_id",
            title=pl.lit("t"),
            content=pl.lit("c"),
            cited_lesson_ids=pl.concat_list(other),
            summariser=pl.lit("liar"),
            fallback=pl.lit(None, pl.String),
            llm_call_key=pl.lit(None, pl.String),
        )


def test_citing_a_non_member_is_refused(built):
    con, facts, _, cl = built
    with pytest.raises(CitationError, match="citation"):
        summarise_clusters(con, Liar(), cl.table, cl.members, facts, pl.DataFrame())
    fine = cl.table.select("cluster_id", cited_lesson_ids=pl.concat_list("medoid_lesson_id"))
    assert check_citations(con, fine, cl.members).height == 0
