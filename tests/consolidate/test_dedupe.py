import numpy as np
import polars as pl
import pytest

from pipeline import schemas, sql
from pipeline.consolidate.dedupe import cluster_lessons, lesson_facts, near_pairs
from pipeline.consolidate.lsh import band_keys, candidate_pairs, pair_cosines
from pipeline.consolidate.settings import Thresholds
from pipeline.consolidate.synth import synthetic_lessons
from pipeline.llm.embed import get_embedder
from tests.consolidate.conftest import write_lake


def facts_of(lake):
    con = sql.connect(lake)
    return con, lesson_facts(con)


def test_lesson_facts_keys(lake):
    write_lake(
        lake,
        [
            {
                "trajectory_id": "r1",
                "title": "Do NOT pass cabin = 'business' to book_reservation!",
                "section": "  Book   flight ",
            },
            {
                "trajectory_id": "r2",
                "title": "When the user has not paid, call get_user_details first",
                "section": None,
            },
            {
                "trajectory_id": "r3",
                "title": "Avoid calling X, if the user does not ask",
                "section": "",
            },
        ],
    )
    _, f = facts_of(lake)
    rows = {r["trajectory_id"]: r for r in f.iter_rows(named=True)}
    r1, r2, r3 = rows["r1"], rows["r2"], rows["r3"]
    assert r1["norm_title"] == "do not pass cabin = business to book_reservation"
    assert r1["negated"] and r1["assigns"] == ["cabin=business", "tool=book_reservation"]
    assert r1["assign_names"] == ["cabin", "tool"]
    assert r1["section"] == "Book flight" and r1["block"] == "book flight|neg"
    assert not r2["negated"]  # the negation sits in the leading condition
    assert r2["block"] == "|pos" and r2["section"] is None
    assert r3["negated"] and r3["section"] is None  # blank section is no section
    assert r1["outcome"] == "failure" and r1["task_id"] == "task-1" and r1["source"] == "fixture"


def test_exact_groups_normalise_case_space_and_punctuation(lake, fixture_rows):
    write_lake(lake, fixture_rows)
    con, f = facts_of(lake)
    con.register("consolidation_lessons", f)
    ex = sql.query(con, "consolidate_exact_groups").join(
        f.select("lesson_id", "title"), on="lesson_id"
    )
    check = ex.filter(pl.col("title").str.to_lowercase().str.starts_with("check the membership"))
    assert check.filter(pl.col("n_exact") == 5).height == 5  # r0-r3 and the upper-cased one
    assert check["exact_rep_id"].n_unique() == 2  # the '(step 12)' one stays apart


def test_near_pairs_find_near_duplicates_and_refuse_other_values(lake):
    base = "Pass the exact total to book_reservation when the payment amount does not add up"
    write_lake(
        lake,
        [
            {"trajectory_id": "a", "title": base},
            {"trajectory_id": "b", "title": base + " (step 7)"},
            {
                "trajectory_id": "c",
                "title": "Pass cabin=economy to update_reservation_flights for a cabin change",
            },
            {
                "trajectory_id": "d",
                "title": "Pass cabin=business to update_reservation_flights for a cabin change",
            },
            {"trajectory_id": "e", "title": "Look the user up before anything else"},
        ],
    )
    con, f = facts_of(lake)
    docs = f.sort("lesson_id").with_row_index("rid").with_columns(pl.col("rid").cast(pl.Int64))
    a, b, sim = near_pairs(
        con, docs.select("rid", "block", "norm_title", "assigns", "assign_names"), Thresholds()
    )
    got = {
        tuple(sorted(docs["trajectory_id"].gather([x, y]).to_list()))
        for x, y in zip(a, b, strict=True)
    }
    assert got == {("a", "b")}
    assert 0.8 <= sim[0] < 1.0
    # at a looser threshold the cabin lessons pair up only without the setting guard
    loose = Thresholds(near_threshold=0.5)
    cols = ["rid", "block", "norm_title", "assigns", "assign_names"]
    a, _, _ = near_pairs(con, docs.select(cols), loose)
    assert len(a) == 1
    empty = pl.lit([], pl.List(pl.String))
    unguarded = docs.with_columns(assigns=empty, assign_names=empty).select(cols)
    a, _, _ = near_pairs(con, unguarded, loose)
    assert len(a) == 2


def test_big_buckets_pair_members_with_pivots_only(lake):
    title = "Check the fare before calling update_reservation_flights"
    write_lake(
        lake, [{"trajectory_id": f"r{i}", "title": f"{title} (step {i})"} for i in range(40)]
    )
    con, f = facts_of(lake)
    docs = f.sort("lesson_id").with_row_index("rid").with_columns(pl.col("rid").cast(pl.Int64))
    docs = docs.select("rid", "block", "norm_title", "assigns", "assign_names")
    a, _, _ = near_pairs(con, docs, Thresholds(max_bucket=1000, bucket_pivots=3))
    capped, _, _ = near_pairs(con, docs, Thresholds(max_bucket=8, bucket_pivots=3))
    assert len(a) == 40 * 39 // 2 and len(capped) < len(a) / 3
    from pipeline.consolidate.unionfind import components

    a, b, _ = near_pairs(con, docs, Thresholds(max_bucket=8, bucket_pivots=3))
    assert len(set(components(40, a, b).tolist())) == 1  # still one cluster


def test_semantic_lsh_candidates_recall_against_brute_force():
    _, lessons = synthetic_lessons(3000, seed=5)
    titles = lessons["title"].unique().sort().to_list()
    v = get_embedder().embed(titles)
    docs = pl.DataFrame(
        {
            "rid": np.arange(len(titles)),
            "block": "b",
            "assigns": [[]] * len(titles),
            "assign_names": [[]] * len(titles),
        },
        schema={
            "rid": pl.Int64,
            "block": pl.String,
            "assigns": pl.List(pl.String),
            "assign_names": pl.List(pl.String),
        },
    )
    con = sql.connect()
    a, b = candidate_pairs(
        con,
        docs,
        band_keys(v, Thresholds().lsh_bands, Thresholds().lsh_rows),
        max_bucket=10**6,
        pivots=1,
    )
    sims = v @ v.T
    x, y = np.triu_indices(len(titles), 1)
    hit = sims[x, y] >= 0.9
    true = set(zip(x[hit].tolist(), y[hit].tolist(), strict=True))
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(true) > 100
    assert len(true & found) / len(true) >= 0.9
    assert len(found) < len(x) / 10  # blocking, not a brute-force join
    assert np.allclose(pair_cosines(v, a[:50], b[:50]), sims[a[:50], b[:50]], atol=1e-5)


@pytest.fixture(scope="module")
def clustered():
    runs, lessons = synthetic_lessons(4000, seed=11)
    con = sql.connect()
    con.register("lessons", lessons.drop("topic", "variant"))
    con.register("trajectories", runs)
    con.register("analyses", schemas.empty("analyses"))
    facts = lesson_facts(con)
    c = cluster_lessons(con, facts, get_embedder(), Thresholds())
    return c, lessons


def test_clusters_match_the_synthetic_topics(clustered):
    c, lessons = clustered
    m = c.members.join(lessons.select("lesson_id", "topic", "variant"), on="lesson_id")

    def pairs(counts):
        x = counts.to_numpy().astype(np.int64)
        return int((x * (x - 1) // 2).sum())

    tp = pairs(m.group_by("root_rid", "topic").len()["len"])
    precision = tp / pairs(m.group_by("root_rid").len()["len"])
    recall = tp / pairs(m.group_by("topic").len()["len"])
    assert precision >= 0.95 and recall >= 0.8, (precision, recall)
    sizes = m.group_by("root_rid").len()
    noise = m.filter(pl.col("variant") == "noise").join(sizes, on="root_rid")
    assert (noise["len"] == 1).mean() >= 0.95  # one-offs stay alone (a few share a template)


def test_every_lesson_has_one_stage_and_a_representative(clustered):
    c, lessons = clustered
    m = c.members
    assert m.height == lessons.height and m["lesson_id"].is_unique().all()
    assert set(m["stage"]) <= {"exact", "near", "semantic", "representative", "singleton"}
    assert m.filter(pl.col("stage") == "exact")["similarity"].eq(1.0).all()
    near = m.filter(pl.col("stage") == "near")["similarity"]
    assert near.len() > 0 and near.max() <= 1.0
    roots = m.filter(pl.col("stage").is_in(["representative", "singleton"]))
    assert (roots["lesson_id"] == roots["representative_lesson_id"]).all()
    assert c.vectors.shape[0] == c.reps.height


def test_lessons_about_two_tools_never_share_a_cluster(lake):
    # Titles differing only in the tool name score ~0.9 with the lexical embedder: the tool
    # is a setting of the lesson, so the pair is refused in every stage.
    rows = [
        {
            "trajectory_id": f"{tool[:3]}{i}",
            "title": f"Call {tool} only when the task requires it: check the conditions first",
            "section": "Modify flight",
            "tool_name": tool,
        }
        for tool in ("update_reservation_flights", "update_reservation_baggages")
        for i in range(3)
    ]
    write_lake(lake, rows)
    con, f = facts_of(lake)
    assert sorted(f["assigns"].explode().unique().to_list()) == [
        "tool=update_reservation_baggages",
        "tool=update_reservation_flights",
    ]
    got = cluster_lessons(con, f, get_embedder("lexical"), Thresholds(near_threshold=0.5))
    roots = got.members.join(f.select("lesson_id", "tool_name"), on="lesson_id")
    per_root = roots.group_by("root_rid").agg(pl.col("tool_name").n_unique())
    assert per_root.height == 2 and per_root["tool_name"].to_list() == [1, 1]
