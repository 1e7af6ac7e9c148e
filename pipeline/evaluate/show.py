"""The tables rollout and eval print: arms, paired differences, ablation ranking, transfer matrix."""

from __future__ import annotations

import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.evaluate.stages import EvalRunResult
from pipeline.lake import Lake


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _skill(role: str, label: str) -> str:
    return label if role in ("rollout", "candidate") else f"{role}: {label}"


def arms(console: Console, outcome: EvalRunResult) -> None:
    order = {"baseline": 0, "incumbent": 1, "candidate": 2, "rollout": 2}
    rows = sorted(
        outcome.arms.filter(pl.col("role") != "ablation").iter_rows(named=True),
        key=lambda r: (r["model"], order[r["role"]], r["label"]),
    )
    console.table(
        f"accuracy (%) on {outcome.run.item(0, 'n_tasks')} tasks, 95% bootstrap interval",
        [
            "model",
            "skill",
            "acc",
            "95% CI",
            "right",
            "errors",
            "turns",
            "tokens",
            "cost $",
            "time s",
        ],
        [
            [
                r["model"],
                _skill(r["role"], r["label"]),
                _pct(r["accuracy"]),
                f"{_pct(r['ci_low'])}-{_pct(r['ci_high'])}",
                f"{r['n_correct']}/{r['n_tasks']}",
                r["n_errors"],
                f"{r['mean_turns']:.1f}",
                r["tokens_in"] + r["tokens_out"],
                f"{r['cost_usd']:.4f}",
                f"{r['seconds']:.0f}",
            ]
            for r in rows
        ],
    )


def comparisons(console: Console, outcome: EvalRunResult) -> None:
    rows = outcome.comparisons.filter(pl.col("kind") != "ablation").sort("model", "kind", "label")
    if rows.height:
        console.table(
            "paired differences (points), arm minus reference, on the same tasks",
            ["model", "arm", "reference", "difference", "95% CI", "won", "lost", "P(not better)"],
            [
                [
                    r["model"],
                    r["label"],
                    r["reference_label"],
                    f"{100 * r['delta']:+.1f}",
                    f"{100 * r['ci_low']:+.1f} to {100 * r['ci_high']:+.1f}",
                    r["wins"],
                    r["losses"],
                    f"{r['p_not_better']:.3f}",
                ]
                for r in rows.iter_rows(named=True)
            ],
        )
    ablation = outcome.comparisons.filter(pl.col("kind") == "ablation").sort("model", "rank")
    if ablation.height:
        console.table(
            "ablation: effect of each section or file (full skill minus the skill without it)",
            ["model", "rank", "left out", "effect", "95% CI", "with", "without"],
            [
                [
                    r["model"],
                    r["rank"],
                    r["unit"],
                    f"{100 * r['delta']:+.1f}",
                    f"{100 * r['ci_low']:+.1f} to {100 * r['ci_high']:+.1f}",
                    _pct(r["accuracy"]),
                    _pct(r["reference_accuracy"]),
                ]
                for r in ablation.iter_rows(named=True)
            ],
        )


def transfer(console: Console, outcome: EvalRunResult) -> None:
    arms = outcome.arms.filter(pl.col("role") != "ablation")
    if arms.get_column("model").n_unique() < 2:
        return
    arms = arms.with_columns(
        column=pl.when(pl.col("role") == "incumbent")
        .then(pl.lit("incumbent: ") + pl.col("label"))
        .otherwise(pl.col("label"))
    )
    order = arms.sort("role").get_column("column").unique(maintain_order=True).to_list()
    matrix = arms.pivot(on="column", index="model", values="accuracy").sort("model")
    console.table(
        "transfer matrix: accuracy (%) of each model (rows) with each skill (columns)",
        ["model", *order],
        [
            [r["model"], *(_pct(r[c]) if r[c] is not None else "" for c in order)]
            for r in matrix.iter_rows(named=True)
        ],
    )


def usage(console: Console, lake: Lake, eval_id: str, top: int = 10) -> None:
    """The skill sections and files the agents with a candidate skill used most."""
    con = sql.connect(lake)
    rows = sql.query(con, "eval_skill_usage", eval_id=eval_id)
    con.close()
    rows = rows.filter(pl.col("role") == "candidate").sort(
        "model", "n_used", "item", descending=[False, True, False]
    )
    rows = rows.group_by("model", maintain_order=True).head(top)
    if rows.height == 0:
        return
    console.table(
        "skill usage: runs that read (through read_skill_file) or cited each section or file",
        ["model", "skill", "item", "runs", "read", "cited", "acc. used", "acc. not used"],
        [
            [
                r["model"],
                r["label"],
                r["item"],
                f"{r['n_used']}/{r['n_runs']}",
                r["n_read"],
                r["n_cited"],
                _pct(r["accuracy_used"]),
                "" if r["accuracy_not_used"] is None else _pct(r["accuracy_not_used"]),
            ]
            for r in rows.iter_rows(named=True)
        ],
    )
