"""From eval_results to the verdict: per-arm accuracy with intervals (``eval_arms``), paired
comparisons (``eval_comparisons``), the regression guard and the ``eval_runs`` row.

Which arms are compared: every skill and the incumbent against the baseline, the candidate
against the incumbent, and the full skill against each ablated variant (the unit's effect).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from pipeline import schemas, sql
from pipeline.evaluate import stats
from pipeline.evaluate.env import Environment
from pipeline.evaluate.record import Arm
from pipeline.lake import Lake


def source_name(env: Environment, split: str) -> str:
    return f"{env.name}-{split}"


def summarise(
    lake: Lake, eval_id: str, arms: list[Arm], *, resamples: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(eval_arms, eval_comparisons) of one evaluation, from its eval_results in the lake."""
    con = sql.connect(lake)
    totals = sql.query(con, "eval_arm_totals", eval_id=eval_id)
    outcomes = sql.query(con, "eval_outcomes", eval_id=eval_id)
    con.close()
    ids = {a.arm_id(eval_id): a for a in arms}
    matrix = outcomes.pivot(on="arm_id", index="task_id", values="correct").sort("task_id")

    def column(arm_id: str) -> np.ndarray:
        if arm_id not in matrix.columns:
            return np.zeros(0)
        return matrix.get_column(arm_id).fill_null(False).cast(pl.Float64).to_numpy()

    rows = []
    for t in totals.iter_rows(named=True):
        arm = ids[t["arm_id"]]
        ci = stats.accuracy(column(t["arm_id"]), resamples=resamples, seed=seed)
        rows.append(
            {
                "eval_id": eval_id,
                **t,
                "role": arm.role,
                "label": arm.label,
                "model": arm.model,
                "skill_name": arm.skill and arm.skill.name,
                "skill_dir": arm.skill and arm.skill.root,
                "skill_digest": arm.skill and arm.skill.digest,
                "variant": arm.variant,
                "ablated": arm.ablated,
                "accuracy": t["n_correct"] / t["n_tasks"] if t["n_tasks"] else 0.0,
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    arm_frame = schemas.validate(
        "eval_arms", pl.DataFrame(rows, schema=schemas.table("eval_arms").columns)
    ).sort("model", "role", "label")
    comparisons = []
    for kind, arm, ref in pairs(arms):
        p = stats.paired(
            column(arm.arm_id(eval_id)), column(ref.arm_id(eval_id)), resamples=resamples, seed=seed
        )
        comparisons.append(
            {
                "eval_id": eval_id,
                "model": arm.model,
                "kind": kind,
                "arm_id": arm.arm_id(eval_id),
                "reference_arm_id": ref.arm_id(eval_id),
                "label": arm.label,
                "reference_label": ref.label,
                "unit": ref.ablated if kind == "ablation" else None,
                "n_paired": p.n,
                "accuracy": p.accuracy,
                "reference_accuracy": p.reference_accuracy,
                "delta": p.delta.estimate,
                "ci_low": p.delta.low,
                "ci_high": p.delta.high,
                "p_not_better": p.p_not_better,
                "wins": p.wins,
                "losses": p.losses,
                "rank": None,
            }
        )
    cmp_frame = pl.DataFrame(comparisons, schema=schemas.table("eval_comparisons").columns)
    ranked = (
        cmp_frame.filter(pl.col("kind") == "ablation")
        .sort("model", "delta", "unit", descending=[False, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("model").cast(pl.Int64))
    )
    cmp_frame = pl.concat([cmp_frame.filter(pl.col("kind") != "ablation"), ranked])
    return arm_frame, schemas.validate("eval_comparisons", cmp_frame)


def pairs(arms: list[Arm]) -> list[tuple[str, Arm, Arm]]:
    """Which arms are compared: skills vs the baseline, candidate vs incumbent, full vs ablated."""
    out = []
    for model in dict.fromkeys(a.model for a in arms):
        mine = [a for a in arms if a.model == model]
        baseline = next((a for a in mine if a.role == "baseline"), None)
        incumbent = next((a for a in mine if a.role == "incumbent"), None)
        candidates = [a for a in mine if a.role == "candidate"]
        if baseline:
            out += [
                ("vs_baseline", a, baseline)
                for a in candidates + ([incumbent] if incumbent else [])
            ]
        if incumbent:
            out += [("vs_incumbent", a, incumbent) for a in candidates]
        for a in mine:
            if a.role == "ablation":
                full = next(c for c in candidates if c.skill and c.skill.root == a.skill.root)
                out.append(("ablation", full, a))
    return out


def guard(comparisons: pl.DataFrame, margin: float) -> tuple[str | None, str | None]:
    """(verdict, reason): refuse when the candidate trails the incumbent by more than ``margin``."""
    rows = comparisons.filter(pl.col("kind") == "vs_incumbent").sort("model").to_dicts()
    if not rows:
        return None, None
    lines, worse = [], False
    for r in rows:
        bad = r["delta"] < -margin
        worse |= bad
        lines.append(
            f"{r['model']}: candidate {r['accuracy']:.3f} vs incumbent {r['reference_accuracy']:.3f} "
            f"on {r['n_paired']} tasks, difference {r['delta']:+.3f} "
            f"(95% CI {r['ci_low']:+.3f} to {r['ci_high']:+.3f}; {r['wins']} won, {r['losses']} lost)"
            + (
                f": a drop of more than the allowed {margin:.3f}"
                if bad
                else f": within the allowed drop of {margin:.3f}"
            )
        )
    return ("refuse" if worse else "promote"), "; ".join(lines)


def run_row(
    eval_id: str,
    kind: str,
    env: Environment,
    split: str,
    n_tasks: int,
    arms_frame: pl.DataFrame,
    settings_json: str,
    verdict: tuple[str | None, str | None],
    started: float,
) -> pl.DataFrame:
    row = {
        "eval_id": eval_id,
        "kind": kind,
        "env": env.name,
        "split": split,
        "source": source_name(env, split),
        "n_tasks": n_tasks,
        "n_arms": arms_frame.height,
        "settings": settings_json,
        "verdict": verdict[0],
        "verdict_reason": verdict[1],
        "tokens_in": int(arms_frame.get_column("tokens_in").sum()),
        "tokens_out": int(arms_frame.get_column("tokens_out").sum()),
        "cost_usd": float(arms_frame.get_column("cost_usd").sum()),
        "seconds": time.perf_counter() - started,
        "created_at": datetime.now(UTC),
    }
    return schemas.validate(
        "eval_runs", pl.DataFrame([row], schema=schemas.table("eval_runs").columns)
    )
