"""Drift: how much of what new runs teach is already in the skill.

Reads the lessons of runs the skill was not built from (a held-out split of the lake, or a new
batch in another lake) and the lessons behind the skill's statements; writes nothing. A new lesson
is "already in the skill" when consolidation would have grouped it with a lesson the skill stands
on: the same block (target section and polarity, the keys consolidate compares lessons within)
and a title at least as similar as consolidation's semantic threshold. Titles are compared, not
titles with their content: a lesson's content tells what happened in its own run (steps, values),
which is exactly what differs between two runs teaching the same lesson.

Each new title is embedded and matched to the most similar title of the skill's lessons in its
block (up to MAX_TITLES distinct titles per kept cluster) by one matrix product per block.

Threshold: the run's semantic threshold (0.9 by default), measured on the demo lake's own lessons
(lexical embedder, `make bench`, report, "drift threshold"): titles of lessons consolidation put in
one cluster score 0.90 and above at their 1st percentile, titles of two clusters of one block at
most 0.90 (2 pairs in 8,847 in the airline runs; at most 0.55 in the ReAct runs). A lesson that
restates a skill lesson in other words scores lower with the lexical embedder (it does not know
synonyms), so drift errs toward being over-reported rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipeline.llm.embed import get_embedder

MATCH_THRESHOLD = 0.9  # consolidate's default semantic threshold
MAX_TITLES = 50  # distinct member titles per cluster the new lessons are compared with
REDISTILL_BELOW = 0.8  # re-distill when fewer than this share of new lessons is already known
_CHUNK = 8192


@dataclass
class Drift:
    """Lessons of held-out or new runs matched against the skill's consolidated lessons."""

    origin: str  # "where: <condition>" or "against: <lake>"
    threshold: float
    embedder: str
    lessons: pl.DataFrame  # one row per new lesson: best match, similarity, is_matched
    trajectories: pl.DataFrame  # one row per new run: lessons, matched lessons
    summary: dict = field(default_factory=dict)


def best_matches(
    queries: list[str],
    targets: list[str],
    *,
    query_blocks: list[str] | None = None,
    target_blocks: list[str] | None = None,
    embedder: str = "lexical",
) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of its most similar target and the cosine (-1 and 0.0 if none).

    With blocks, a query is only compared with the targets of its own block."""
    n = len(queries)
    if n == 0 or not targets:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float64)
    model = get_embedder(embedder)
    target_vecs = model.embed(targets)
    if query_blocks is not None and target_blocks is not None:
        codes = {b: i for i, b in enumerate(sorted(set(target_blocks)))}
        t_code = np.array([codes[b] for b in target_blocks], dtype=np.int64)
        q_code = np.array([codes.get(b, -1) for b in query_blocks], dtype=np.int64)
    else:
        t_code, q_code = np.zeros(len(targets), dtype=np.int64), np.zeros(n, dtype=np.int64)
    by_code = {int(c): np.flatnonzero(t_code == c) for c in np.unique(t_code)}
    best_idx = np.full(n, -1, dtype=np.int64)
    best_sim = np.zeros(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        vecs = model.embed(queries[start:stop])
        codes_here = q_code[start:stop]
        # one product per block: a lesson only meets the skill's lessons of its own block
        for code in np.unique(codes_here):
            cols = by_code.get(int(code))
            if cols is None:
                continue
            rows = np.flatnonzero(codes_here == code)
            sims = vecs[rows] @ target_vecs[cols].T
            best = sims.argmax(axis=1)
            best_idx[start + rows] = cols[best]
            best_sim[start + rows] = sims[np.arange(len(rows)), best]
    return best_idx, np.round(np.clip(best_sim, -1.0, 1.0), 6)


def measure(
    new_lessons: pl.DataFrame,
    new_trajectories: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    origin: str,
    threshold: float = MATCH_THRESHOLD,
    embedder: str = "lexical",
    redistill_below: float = REDISTILL_BELOW,
) -> Drift:
    """Match `new_lessons` (coverage_new_lessons) to `targets` (coverage_skill_targets).

    Targets are one row per cluster and member title (`cluster_id`, `title`, `statements`, and
    optionally `cluster_title`); with a `block` column on both sides, only blocks alike meet."""
    blocked = "block" in new_lessons.columns and "block" in targets.columns
    idx, sim = best_matches(
        new_lessons["title"].fill_null("").to_list(),
        targets["title"].fill_null("").to_list(),
        query_blocks=new_lessons["block"].to_list() if blocked else None,
        target_blocks=targets["block"].to_list() if blocked else None,
        embedder=embedder,
    )
    cluster_title = "cluster_title" if "cluster_title" in targets.columns else "title"
    picked = targets.select(
        pl.col("cluster_id").alias("best_cluster_id"),
        pl.col(cluster_title).alias("best_title"),
        pl.col("title").alias("matched_title"),
        pl.col("statements").alias("best_statements"),
    )
    at = pl.Series("at", idx, dtype=pl.Int64)
    matched = picked.select(pl.all().gather(at.set(at < 0, None))) if targets.height else None
    if matched is None:
        matched = pl.DataFrame(
            {c: [None] * new_lessons.height for c in picked.columns}, schema=picked.schema
        )
    lessons = pl.concat(
        [new_lessons.drop("content", strict=False), matched, pl.DataFrame({"similarity": sim})],
        how="horizontal",
    ).with_columns(is_matched=pl.col("similarity") >= threshold)
    per_run = lessons.group_by("trajectory_id").agg(
        n_matched=pl.col("is_matched").sum().cast(pl.Int64)
    )
    trajectories = (
        new_trajectories.join(per_run, on="trajectory_id", how="left")
        .with_columns(pl.col("n_matched").fill_null(0))
        .with_columns(is_matched=pl.col("n_matched") > 0)
        .sort("trajectory_id")
    )
    n_targets = targets["cluster_id"].n_unique() if targets.height else 0
    return Drift(
        origin=origin,
        threshold=threshold,
        embedder=embedder,
        lessons=lessons.sort("lesson_id"),
        trajectories=trajectories,
        summary=_summary(lessons, trajectories, n_targets, redistill_below)
        | {"n_target_titles": targets.height},
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _summary(
    lessons: pl.DataFrame, runs: pl.DataFrame, n_targets: int, redistill_below: float
) -> dict:
    n_lessons, n_matched = lessons.height, int(lessons["is_matched"].sum())
    failed = runs.filter(pl.col("outcome") == "failure")
    share = _share(n_matched, n_lessons)
    if share is None:
        verdict = "no new lessons to compare: analyse the new runs first"
    elif share < redistill_below:
        verdict = (
            f"re-distill: {n_lessons - n_matched} of {n_lessons} new lessons are not in the skill "
            f"(known share {share:.0%} < {redistill_below:.0%})"
        )
    else:
        verdict = f"the skill still holds: {share:.0%} of new lessons are already in it"
    return {
        "n_targets": n_targets,
        "n_trajectories": runs.height,
        "n_lessons": n_lessons,
        "n_lessons_matched": n_matched,
        "share_lessons_matched": share,
        "n_failures": failed.height,
        "n_failures_matched": int(failed["is_matched"].sum()),
        "share_failures_matched": _share(int(failed["is_matched"].sum()), failed.height),
        "redistill_below": redistill_below,
        "redistill": share is not None and share < redistill_below,
        "verdict": verdict,
    }
