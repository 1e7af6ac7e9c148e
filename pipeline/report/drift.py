"""Drift: how much of what new runs teach is already in the skill.

Reads the lessons of runs the skill was not built from (a held-out split of the lake, or a new
batch in another lake) and the consolidated lessons that reached the skill; writes nothing. Each
new lesson is embedded and matched to its most similar consolidated lesson by one matrix product
(the skill side holds hundreds of statements, so no blocking is needed). A lesson above the
threshold is "already in the skill"; the share of such lessons tells when to re-distill.

Threshold: 0.85 cosine on the lexical embedder. Measured on 180 lessons written from the
tau-bench airline gold actions with three templates (bench_report, "drift threshold"): lessons of
one rule about one tool score 0.877 at their 5th percentile (median 0.915), the same rule about
another tool 0.838 at its 99th, another rule about the same tool at most 0.725. 0.85 sits between
the two, so a new lesson counts as known only when it restates a consolidated lesson about the
same tool and finding. Reworded paraphrases score lower (two hand-reworded lessons: 0.58 and
0.61), so drift errs toward being over-reported rather than hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipeline.llm.embed import get_embedder

MATCH_THRESHOLD = 0.85
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


def lesson_text(title: pl.Expr, content: pl.Expr) -> pl.Expr:
    return pl.concat_str([title.fill_null(""), content.fill_null("")], separator="\n")


def best_matches(
    queries: list[str], targets: list[str], *, embedder: str = "lexical"
) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of its most similar target and the cosine (-1, 0.0 if none)."""
    n = len(queries)
    if n == 0 or not targets:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float64)
    model = get_embedder(embedder)
    target_vecs = model.embed(targets)
    best_idx = np.empty(n, dtype=np.int64)
    best_sim = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        sims = model.embed(queries[start : start + _CHUNK]) @ target_vecs.T
        idx = sims.argmax(axis=1)
        best_idx[start : start + len(idx)] = idx
        best_sim[start : start + len(idx)] = sims[np.arange(len(idx)), idx]
    return best_idx, np.round(best_sim, 6)


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
    """Match `new_lessons` (coverage_new_lessons) to `targets` (coverage_skill_targets)."""
    queries = new_lessons.select(lesson_text(pl.col("title"), pl.col("content"))).to_series()
    texts = targets.select(lesson_text(pl.col("title"), pl.col("content"))).to_series()
    idx, sim = best_matches(queries.to_list(), texts.to_list(), embedder=embedder)
    picked = targets.select(
        pl.col("cluster_id").alias("best_cluster_id"),
        pl.col("title").alias("best_title"),
        pl.col("statements").alias("best_statements"),
    )
    if targets.height:
        matched = picked.select(pl.all().gather(idx))
    else:
        matched = pl.DataFrame(
            {c: [None] * new_lessons.height for c in picked.columns}, schema=picked.schema
        )
    lessons = pl.concat(
        [new_lessons.drop("content"), matched, pl.DataFrame({"similarity": sim})],
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
    return Drift(
        origin=origin,
        threshold=threshold,
        embedder=embedder,
        lessons=lessons.sort("lesson_id"),
        trajectories=trajectories,
        summary=_summary(lessons, trajectories, targets.height, redistill_below),
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
