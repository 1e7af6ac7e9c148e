"""`trace2skill analyse`: run an analyst over the lake's trajectories (see `run.py`)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.analyse.run import AnalyseError, AnalyseSummary
from pipeline.analyse.run import analyse as run_analyse
from pipeline.console import Console
from pipeline.options import lake_option, pass_console


def _sample(ctx: click.Context, param: click.Parameter, value: str | None) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a count nor a fraction") from None
    if 0 < number < 1:
        return number
    if number >= 1 and number.is_integer():
        return int(number)
    raise click.BadParameter(f"{value!r}: give a count >= 1 or a fraction between 0 and 1")


@click.command("analyse")
@lake_option()
@click.option(
    "--analyst",
    type=click.Choice(["miner", "single", "agentic"]),
    default="miner",
    show_default=True,
    help="miner: offline rules over the data (no model); single / agentic: model analysts.",
)
@click.option("--model", default=None, help="Model name for the model analysts (not the miner).")
@click.option(
    "--base-skill",
    type=click.Path(exists=True, file_okay=True, dir_okay=True, path_type=Path),
    default=None,
    help="Skill folder (or SKILL.md) being deepened: lessons target its sections by name.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="First N trajectories of the selection.",
)
@click.option(
    "--where",
    default=None,
    metavar="SQL",
    help="SQL filter on trajectories, e.g. \"outcome = 'failure' and source = 'tau-bench-airline'\".",
)
@click.option(
    "--sample",
    callback=_sample,
    default=None,
    metavar="N|FRAC",
    help="Random sample of the selection: a count (50) or a fraction (0.1), drawn with --seed.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --sample.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Trajectories per written part."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the miner (default: one per core for large selections).",
)
@pass_console
def analyse(
    console: Console,
    lake,
    analyst: str,
    model: str | None,
    base_skill: Path | None,
    limit: int | None,
    where: str | None,
    sample: float | int | None,
    seed: int,
    batch_size: int | None,
    workers: int | None,
) -> None:
    """Analyse every trajectory into lessons (LAKE/lessons), marking each done (LAKE/analyses).

    \b
    Resumable and incremental: a trajectory already analysed ok with the same analyst, model and
    prompt version is skipped, so a second run does no work and new trajectories are analysed
    alone. A trajectory whose analysis fails gets an error row and is retried next time.

    \b
    Exit status: 0 when every selected trajectory is analysed, 3 when some failed (error rows,
    retried by the next run), 1 when the run cannot start (bad filter, empty lake, model analyst).
    """
    try:
        summary = run_analyse(
            lake,
            analyst=analyst,
            model=model,
            base_skill=base_skill,
            limit=limit,
            where=where,
            sample=sample,
            seed=seed,
            console=console,
            batch_size=batch_size,
            workers=workers,
        )
    except AnalyseError as exc:
        raise click.ClickException(str(exc)) from None
    show(console, summary)
    if summary.n_failed:
        raise SystemExit(3)


def show(console: Console, s: AnalyseSummary) -> None:
    rows = [
        ("trajectories selected", s.n_selected),
        ("skipped (already analysed)", s.n_skipped),
        ("analysed", s.n_analysed),
        ("failed (error rows, retried next run)", s.n_failed),
        ("lessons written", s.n_lessons),
    ]
    if s.model != "offline":
        rows += [
            ("model calls", s.usage.n_calls),
            ("tokens in / out", f"{s.usage.tokens_in} / {s.usage.tokens_out}"),
            ("cost (USD)", f"{s.usage.cost_usd:.4f}"),
        ]
    rows.append(("seconds", f"{s.seconds:.1f}"))
    console.table(f"analyse: {s.analyst} ({s.model}, {s.prompt_version})", ["", "count"], rows)
    if s.lessons_by_rule:
        console.table(
            "lessons by rule",
            ["rule", "lessons"],
            sorted(s.lessons_by_rule.items(), key=lambda kv: (-kv[1], kv[0])),
        )
    for tid, reason in s.errors:
        console.error(f"trajectory {tid}: {reason}")
