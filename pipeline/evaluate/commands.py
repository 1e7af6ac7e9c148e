"""rollout and eval: run an agent on an environment's tasks, compare skills, guard promotions."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl

from pipeline.console import Console
from pipeline.evaluate import env as environments
from pipeline.evaluate import stages
from pipeline.evaluate.agent import AgentSettings
from pipeline.evaluate.run import RunSettings
from pipeline.evaluate.skill import Skill, SkillError
from pipeline.evaluate.stages import Outcome
from pipeline.evaluate.wikitablequestions.data import DataError
from pipeline.options import lake_option, pass_console

EXIT_REFUSED = 3


def _common(f):
    options = [
        click.option(
            "--env",
            "env_name",
            default="wtq",
            show_default=True,
            metavar="NAME",
            help="Environment: a registered name (see --list-envs) or module:factory.",
        ),
        click.option(
            "--data",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="The environment's data folder (wtq: a WikiTableQuestions release; "
            "default: the sample shipped in data/wikitablequestions).",
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=None,
            help="Run a seeded sample of N tasks of the split.",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the task sample, the model calls and the bootstrap.",
        ),
        click.option(
            "--max-turns",
            type=click.IntRange(min=1),
            default=12,
            show_default=True,
            help="Model calls per episode before it is stopped.",
        ),
        click.option("--temperature", type=float, default=0.0, show_default=True),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=8,
            show_default=True,
            help="Episodes played at once.",
        ),
        click.option(
            "--base-url",
            envvar="OPENAI_BASE_URL",
            default=None,
            help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL).",
        ),
        click.option(
            "--api-key",
            envvar="OPENAI_API_KEY",
            default=None,
            help="API key (default: $OPENAI_API_KEY; never stored).",
        ),
        lake_option(),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _env(name: str, data: Path | None):
    try:
        return environments.load(name, data=data)
    except (LookupError, TypeError, DataError) as exc:
        raise click.BadParameter(str(exc), param_hint="--env/--data") from None


def _skill(path: Path | str, option: str) -> Skill:
    try:
        return Skill.load(path)
    except SkillError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _llms(models: tuple[str, ...], base_url, api_key, lake, console) -> dict[str, object]:
    from pipeline.llm import LLM, ModelSettings

    out = {}
    for model in dict.fromkeys(models):
        settings = ModelSettings.resolve(model=model, base_url=base_url, api_key=api_key)
        out[model] = LLM(settings, lake=lake, console=console)
    return out


def _settings(max_turns, temperature, seed, concurrency, stage) -> RunSettings:
    agent = AgentSettings(max_turns=max_turns, temperature=temperature, seed=seed, stage=stage)
    return RunSettings(agent=agent, concurrency=concurrency)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def show_arms(console: Console, outcome: Outcome) -> None:
    arms = outcome.arms.filter(pl.col("role") != "ablation").sort("model", "role", "label")
    console.table(
        f"accuracy (%) on {outcome.run.item(0, 'n_tasks')} tasks, 95% bootstrap interval",
        [
            "model",
            "role",
            "skill",
            "accuracy",
            "95% CI",
            "right",
            "errors",
            "turns",
            "tokens",
            "cost $",
            "seconds",
        ],
        [
            [
                r["model"],
                r["role"],
                r["label"],
                _pct(r["accuracy"]),
                f"{_pct(r['ci_low'])}-{_pct(r['ci_high'])}",
                f"{r['n_correct']}/{r['n_tasks']}",
                r["n_errors"],
                f"{r['mean_turns']:.1f}",
                r["tokens_in"] + r["tokens_out"],
                f"{r['cost_usd']:.4f}",
                f"{r['seconds']:.1f}",
            ]
            for r in arms.iter_rows(named=True)
        ],
    )


def show_comparisons(console: Console, outcome: Outcome) -> None:
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


def show_transfer(console: Console, outcome: Outcome) -> None:
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


def _list_envs(ctx: click.Context, param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo("\n".join(environments.available()))
        ctx.exit()


@click.command("rollout")
@_common
@click.option(
    "--split", default="train", show_default=True, help="Task split (wtq: train, test, dev)."
)
@click.option("--model", required=True, help="Model name at the endpoint.")
@click.option(
    "--skill",
    "skill_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill folder to load (SKILL.md in the prompt, files by a tool).",
)
@click.option(
    "--list-envs",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_list_envs,
    help="List the environments and exit.",
)
@pass_console
def rollout(
    console: Console,
    env_name,
    data,
    limit,
    seed,
    max_turns,
    temperature,
    concurrency,
    base_url,
    api_key,
    lake,
    split,
    model,
    skill_dir,
):
    """Run an agent on an environment's tasks; the runs go into the lake as trajectories.

    \b
    The runs land in trajectories/steps under source <env>-<split> with the scorer's outcome,
    ready for `analyse` and `consolidate`; per-task results go to eval_results.
      trace2skill rollout --env wtq --split train --model qwen3-35b --lake lake --limit 200
    """
    env = _env(env_name, data)
    skill = _skill(skill_dir, "--skill") if skill_dir else None
    llms = _llms((model,), base_url, api_key, lake, console)
    try:
        outcome = stages.rollout(
            lake,
            env,
            llms[model],
            model=model,
            split=split,
            skill=skill,
            limit=limit,
            settings=_settings(max_turns, temperature, seed, concurrency, "rollout"),
            console=console,
        )
    except (DataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    show_arms(console, outcome)
    console.info(
        f"{outcome.played} episodes played; runs in {lake.uri} under source {outcome.run.item(0, 'source')}"
    )


@click.command("eval")
@_common
@click.option(
    "--split", default="test", show_default=True, help="Task split (wtq: train, test, dev)."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Model name; repeat for a transfer matrix (every model with every skill).",
)
@click.option(
    "--skill",
    "skill_dirs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Candidate skill folder; repeat to compare several.",
)
@click.option(
    "--baseline",
    default="none",
    show_default=True,
    metavar="none|DIR",
    help="What the skills are compared with: no skill, or another skill folder.",
)
@click.option(
    "--incumbent",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill in use now: refuse (exit 3) if the candidate is worse by more than --margin.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Accuracy drop (0..1) the guard tolerates against --incumbent.",
)
@click.option(
    "--ablate",
    is_flag=True,
    help="Also run each skill without each of its sections and files, and rank them by effect.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=100),
    default=2000,
    show_default=True,
    help="Bootstrap resamples for the intervals.",
)
@pass_console
def eval_(
    console: Console,
    env_name,
    data,
    limit,
    seed,
    max_turns,
    temperature,
    concurrency,
    base_url,
    api_key,
    lake,
    split,
    models,
    skill_dirs,
    baseline,
    incumbent,
    margin,
    ablate,
    bootstrap,
):
    """Evaluate skills against a baseline, paired by task, with intervals, cost and a guard.

    \b
    Every model runs every task with the baseline (no skill by default), each --skill and the
    --incumbent. Accuracy has a bootstrap interval, and so has each paired difference. With
    several models the transfer matrix is printed. Exit status 3 when the guard refuses.
      trace2skill eval --env wtq --split test --model qwen3-122b --skill out/skill --lake lake
    """
    env = _env(env_name, data)
    skills = [_skill(p, "--skill") for p in skill_dirs]
    base = None if baseline.lower() == "none" else _skill(baseline, "--baseline")
    inc = _skill(incumbent, "--incumbent") if incumbent else None
    if inc is not None and len(skills) != 1:
        raise click.UsageError("--incumbent takes exactly one --skill (the candidate)")
    llms = _llms(models, base_url, api_key, lake, console)
    settings = _settings(max_turns, temperature, seed, concurrency, "eval")
    settings = RunSettings(agent=settings.agent, concurrency=concurrency, resamples=bootstrap)
    try:
        outcome = stages.evaluate(
            lake,
            env,
            llms,
            split=split,
            skills=skills,
            baseline=base,
            incumbent=inc,
            margin=margin,
            ablate=ablate,
            limit=limit,
            settings=settings,
            console=console,
        )
    except (DataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    show_arms(console, outcome)
    show_comparisons(console, outcome)
    show_transfer(console, outcome)
    console.info(
        f"eval {outcome.eval_id}: {outcome.played} episodes played; tables eval_* in {lake.uri}"
    )
    if outcome.verdict == "refuse":
        console.error(f"the candidate is not promoted: {outcome.reason}")
        raise SystemExit(EXIT_REFUSED)
    if outcome.verdict == "promote":
        console.info(f"the candidate may be promoted: {outcome.reason}")
