import polars as pl

from pipeline.report import drift


def test_best_match_finds_the_restatement():
    targets = [
        "Pass dates to search_flights as YYYY-MM-DD\nsearch_flights rejects 05/15/2024.",
        "Look up the user before updating a reservation\nCall get_user_details first.",
    ]
    queries = [
        "Look up the user before updating a reservation\nCall get_user_details first!",
        "Refund to the original payment method",
    ]
    idx, sim = drift.best_matches(queries, targets)
    assert idx[0] == 1 and sim[0] > drift.MATCH_THRESHOLD
    assert sim[1] < 0.5


def test_no_targets_matches_nothing():
    idx, sim = drift.best_matches(["a lesson"], [])
    assert idx.tolist() == [-1] and sim.tolist() == [0.0]


def _lessons(titles):
    return pl.DataFrame(
        {
            "lesson_id": [f"L{i}" for i in range(len(titles))],
            "trajectory_id": ["T0"] * len(titles),
            "kind": ["failure_lesson"] * len(titles),
            "title": titles,
            "content": ["x"] * len(titles),
        },
        schema={c: pl.String for c in ("lesson_id", "trajectory_id", "kind", "title", "content")},
    )


def test_measure_with_an_empty_skill_advises_redistilling():
    targets = pl.DataFrame(
        schema={
            "cluster_id": pl.String,
            "title": pl.String,
            "content": pl.String,
            "statements": pl.List(pl.String),
        }
    )
    runs = pl.DataFrame({"trajectory_id": ["T0"], "outcome": ["failure"], "n_lessons": [2]})
    d = drift.measure(_lessons(["a", "b"]), runs, targets, origin="test")
    assert d.lessons["is_matched"].to_list() == [False, False]
    assert d.lessons["best_cluster_id"].to_list() == [None, None]
    assert d.summary["redistill"] and d.summary["share_failures_matched"] == 0.0


def test_measure_without_new_lessons_says_so():
    targets = pl.DataFrame(
        {"cluster_id": ["C"], "title": ["t"], "content": ["c"], "statements": [["SKILL.md:1"]]}
    )
    runs = pl.DataFrame({"trajectory_id": ["T0"], "outcome": ["failure"], "n_lessons": [0]})
    d = drift.measure(_lessons([]), runs, targets, origin="test")
    assert d.summary["share_lessons_matched"] is None and not d.summary["redistill"]
    assert "analyse" in d.summary["verdict"]
    assert d.trajectories["n_matched"].to_list() == [0]


def test_large_batches_are_matched_in_chunks(monkeypatch):
    monkeypatch.setattr(drift, "_CHUNK", 3)
    titles = [f"lesson number {i} about tool_{i % 4}" for i in range(10)]
    idx, sim = drift.best_matches(titles, titles[:4])
    assert idx[:4].tolist() == [0, 1, 2, 3] and all(s > 0.99 for s in sim[:4])
    assert len(idx) == 10
