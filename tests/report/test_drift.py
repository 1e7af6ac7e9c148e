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


def test_blocks_keep_other_sections_and_polarities_apart():
    title = "Call think before cancel_reservation"
    idx, sim = drift.best_matches(
        [title, title, "Do not call think before cancel_reservation"],
        [title, "Do not call think before cancel_reservation"],
        query_blocks=["cancel|pos", "book|pos", "cancel|neg"],
        target_blocks=["cancel|pos", "cancel|neg"],
    )
    assert idx.tolist() == [0, -1, 1] and sim.tolist() == [1.0, 0.0, 1.0]


def test_the_same_title_is_known_whatever_its_run_says():
    """Content tells what happened in one run; the title is the lesson."""
    title = "Tell the user the exact value they asked for, computed from the tool results"
    lessons = _lessons([title, "Refund to the original payment method"]).with_columns(
        content=pl.Series(["At step 9 the agent said 1,203 instead of 1,230.", "x"]),
        block=pl.Series(["general|pos", "general|pos"]),
    )
    targets = pl.DataFrame(
        {
            "cluster_id": ["C"],
            "block": ["general|pos"],
            "cluster_title": [title],
            "title": [title],
            "statements": [["SKILL.md:3"]],
        }
    )
    runs = pl.DataFrame({"trajectory_id": ["T0"], "outcome": ["failure"], "n_lessons": [2]})
    d = drift.measure(lessons, runs, targets, origin="test")
    assert d.lessons["is_matched"].to_list() == [True, False]
    assert d.lessons["similarity"][0] == 1.0 and d.lessons["matched_title"][0] == title
    assert d.summary["n_targets"] == 1 and d.summary["n_target_titles"] == 1
