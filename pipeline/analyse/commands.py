"""`trace2skill analyse`: run an analyst over the lake's trajectories (see `run.py`)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.analyse import registry
from pipeline.analyse.run import AnalyseError, AnalyseSummary
from pipeline.analyse.run import analyse as run_analyse
from pipeline.console import Console
from pipeline.options import (
    analyst_option,
    lake_option,
    model_options,
    pass_console,
    resolve_model_settings,
)


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
@analyst_option(
    "miner: offline rules over the data (no model); single: one model call per run; "
    "agentic: a model with read-only tools over the run and the lake. "
    "Default: single when a model is given (--model, T2S_MODEL, the settings file), else miner."
)
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
    "--max-lessons",
    type=click.IntRange(min=1),
    default=None,
    help="Most lessons per trajectory (default: 3 for the model analysts, 10 for the miner).",
)
@click.option(
    "--render-tokens",
    type=click.IntRange(min=500),
    default=None,
    help="Model analysts: token budget of the rendered run in a prompt (default 8000).",
)
@click.option(
    "--max-turns",
    type=click.IntRange(min=1),
    default=None,
    help="Agentic analyst: tool-using turns per run before its answer is forced (default 12).",
)
@click.option(
    "--tokens-per-run",
    type=click.IntRange(min=1000),
    default=None,
    help="Agentic analyst: tokens one run's conversation may use (default 60000).",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Trajectories per written part."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the miner (default: one per core for large selections); "
    "with --engine ray, actors (default: one per CPU of the cluster).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where the map runs: this machine, or Ray Data (needs the ray extra). Same lessons.",
)
@click.option(
    "--ray-address",
    metavar="ADDR",
    default=None,
    help="Ray cluster to join (e.g. ray://head:10001 or auto); default: a local Ray instance.",
)
@model_options
@pass_console
def analyse(
    console: Console,
    lake,
    analyst: str | None,
    base_skill: Path | None,
    limit: int | None,
    where: str | None,
    sample: float | int | None,
    seed: int,
    max_lessons: int | None,
    render_tokens: int | None,
    max_turns: int | None,
    tokens_per_run: int | None,
    batch_size: int | None,
    workers: int | None,
    engine: str,
    ray_address: str | None,
    model_overrides: dict,
) -> None:
    """Analyse every trajectory into lessons (LAKE/lessons), marking each done (LAKE/analyses).

    \b
    Resumable and incremental: a trajectory already analysed ok with the same analyst, model and
    prompt version is skipped, so a second run does no work and new trajectories are analysed
    alone. A trajectory whose analysis fails gets an error row and is retried next time.

    \b
      trace2skill analyse --lake lake                          # offline miner
      trace2skill analyse --lake lake --model gpt-4o-mini      # single call per run
      trace2skill analyse --lake lake --analyst agentic --model qwen3 --base-url http://localhost:8000/v1

    \b
    Exit status: 0 when every selected trajectory is analysed, 3 when some failed (error rows,
    retried by the next run) or a spent budget left some for the next run, 1 when the run
    cannot start (bad filter, empty lake, a model analyst without a model).
    """
    cli_model = model_overrides.get("model")
    settings = resolve_model_settings(model_overrides)
    try:
        offline_analyst = analyst is not None and not registry.needs_model(analyst)
    except AnalyseError as exc:
        raise click.ClickException(str(exc)) from None
    if offline_analyst and cli_model not in (None, "offline"):
        raise click.ClickException(
            f"the {analyst} analyst runs offline; --model {cli_model!r} applies to an analyst "
            "that uses a model (or leave --analyst out to use the model)"
        )
    options = {
        "max_lessons": max_lessons,
        "render_tokens": render_tokens,
        "max_turns": max_turns,
        "tokens_per_run": tokens_per_run,
    }
    try:
        summary = run_analyse(
            lake,
            analyst=analyst,
            settings=settings,
            options={k: v for k, v in options.items() if v is not None},
            base_skill=base_skill,
            limit=limit,
            where=where,
            sample=sample,
            seed=seed,
            console=console,
            batch_size=batch_size,
            workers=workers,
            engine=engine,
            ray_address=ray_address,
        )
    except AnalyseError as exc:
        raise click.ClickException(str(exc)) from None
    show(console, summary)
    if summary.n_failed or summary.n_left:
        raise SystemExit(3)


def show(console: Console, s: AnalyseSummary) -> None:
    rows = [
        ("trajectories selected", s.n_selected),
        ("skipped (already analysed)", s.n_skipped),
        ("analysed", s.n_analysed),
        ("failed (error rows, retried next run)", s.n_failed),
    ]
    if s.stopped:
        rows.append(("left for the next run", s.n_left))
    rows.append(("lessons written", s.n_lessons))
    if s.rejected:
        rows.append(("lessons rejected", sum(s.rejected.values())))
    if s.model != "offline":
        u = s.usage
        rows += [
            ("model calls (cache hits)", f"{u.n_calls} ({u.cache_hits})"),
            ("tokens in / out", f"{u.tokens_in:,} / {u.tokens_out:,}"),
            ("cost (USD)", f"{u.cost_usd:.4f}"),
        ]
    rows.append(("seconds", f"{s.seconds:.1f}"))
    console.table(f"analyse: {s.analyst} ({s.model}, {s.prompt_version})", ["", "count"], rows)
    if s.lessons_by_rule:
        console.table(
            "lessons by rule",
            ["rule", "lessons"],
            sorted(s.lessons_by_rule.items(), key=lambda kv: (-kv[1], kv[0])),
        )
    if s.rejected:
        console.table(
            "lessons rejected",
            ["reason", "lessons"],
            sorted(s.rejected.items(), key=lambda kv: (-kv[1], kv[0])),
        )
    if s.judged:
        console.table(
            "runs of unknown outcome, as the model judged them",
            ["judged", "runs"],
            sorted(s.judged.items()),
        )
    for tid, reason in s.errors:
        console.error(f"trajectory {tid}: {reason}")
    if s.stopped:
        console.warn(f"stopped early: {s.stopped}; rerun to analyse the {s.n_left} left")
