"""rollout and eval: run an agent on an environment's tasks, compare skills, guard promotions."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.console import Console
from pipeline.evaluate import env as environments
from pipeline.evaluate import show, stages
from pipeline.evaluate.agent import AgentSettings
from pipeline.evaluate.env import Environment, Task
from pipeline.evaluate.run import RunSettings
from pipeline.evaluate.skill import Skill, SkillError
from pipeline.evaluate.wikitablequestions.data import DataError
from pipeline.options import lake_option, model_options, pass_console, resolve_model_settings

EXIT_REFUSED = 3
DEFAULT_CONCURRENCY = 8


def _list_envs(ctx: click.Context, param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo("\n".join(environments.available()))
        ctx.exit()


def task_options(func):
    """--env, --data, --limit, --seed, --max-turns, --bootstrap, --lake, --list-envs."""
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
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            help="The environment's data folder (wtq: a WikiTableQuestions release, same layout; "
            "default: the sample in data/wikitablequestions).",
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=None,
            help="A sample of N tasks of the split (drawn with --seed).",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the task sample and the bootstrap (--model-seed goes to the server).",
        ),
        click.option(
            "--max-turns",
            type=click.IntRange(min=1),
            default=12,
            show_default=True,
            help="Model calls per episode before it is stopped unanswered.",
        ),
        click.option(
            "--bootstrap",
            type=click.IntRange(min=100),
            default=2000,
            show_default=True,
            help="Bootstrap resamples for the confidence intervals.",
        ),
        click.option(
            "--list-envs",
            is_flag=True,
            is_eager=True,
            expose_value=False,
            callback=_list_envs,
            help="List the environments and exit.",
        ),
        lake_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _env(name: str, data: Path | None) -> Environment:
    try:
        return environments.load(name, data=data)
    except (LookupError, TypeError, DataError) as exc:
        raise click.BadParameter(str(exc), param_hint="--env/--data") from None


def _tasks(env: Environment, split: str, limit: int | None, seed: int) -> list[Task]:
    try:
        tasks = env.tasks(split, limit, seed)
    except (DataError, LookupError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--split/--data") from None
    if not tasks:
        raise click.BadParameter(
            f"{env.name} has no tasks in split {split!r}", param_hint="--split"
        )
    return tasks


def _skill(path: Path | str, option: str) -> Skill:
    try:
        return Skill.load(path)
    except SkillError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _clients(models: list[str | None], overrides: dict, lake, console) -> tuple[dict, int]:
    """One model-layer client per model name (None: the one the settings name), and how many
    episodes to play at once (the model settings' concurrency)."""
    from pipeline.llm import LLM

    clients, concurrency = {}, overrides.get("concurrency")
    for model in dict.fromkeys(models):
        settings = resolve_model_settings(overrides, model=model)
        if settings.model in (None, "", "offline"):
            raise click.UsageError(
                "rollout and eval play an agent: give --model, a model served at --base-url"
            )
        clients[settings.model] = LLM(settings, lake=lake, console=console)
        concurrency = concurrency or getattr(settings, "concurrency", None)
    return clients, int(concurrency or DEFAULT_CONCURRENCY)


def _run_settings(overrides, max_turns, concurrency, bootstrap, seed, stage) -> RunSettings:
    agent = AgentSettings(
        max_turns=max_turns,
        temperature=overrides.get("temperature"),
        seed=overrides.get("seed"),
        stage=stage,
    )
    return RunSettings(agent=agent, concurrency=concurrency, resamples=bootstrap, seed=seed)


@click.command("rollout")
@task_options
@click.option(
    "--split", default="train", show_default=True, help="Task split (wtq: train, test, dev)."
)
@click.option(
    "--skill",
    "skill_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Skill folder to load (SKILL.md in the system prompt, its files through a tool).",
)
@model_options
@pass_console
def rollout(console: Console, env_name, data, limit, seed, max_turns, bootstrap, lake, split, skill_dir,
            model_overrides):  # fmt: skip
    """Run an agent on an environment's tasks; the runs go into the lake as trajectories.

    \b
    Runs land in trajectories/steps under source <env>-<split>, scored (outcome, reward, the
    gold answer in meta.grader), ready for `analyse` and `consolidate`; per-task results go to
    eval_results. A rerun resumes: batches already in the lake are not played again.
      trace2skill rollout --env wtq --split train --model qwen3-35b --lake lake --limit 200
    """
    env = _env(env_name, data)
    tasks = _tasks(env, split, limit, seed)
    skill = _skill(skill_dir, "--skill") if skill_dir else None
    clients, concurrency = _clients([model_overrides.get("model")], model_overrides, lake, console)
    (model,) = clients
    settings = _run_settings(model_overrides, max_turns, concurrency, bootstrap, seed, "rollout")
    outcome = stages.rollout(
        lake, env, clients[model], model=model, split=split, skill=skill, limit=limit,
        tasks=tasks, settings=settings, console=console,
    )  # fmt: skip
    show.arms(console, outcome)
    console.info(
        f"{outcome.played} episodes played; runs in {lake.uri}, source {outcome.run.item(0, 'source')}"
    )


@click.command("eval")
@task_options
@click.option(
    "--split", default="test", show_default=True, help="Task split (wtq: train, test, dev)."
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
    help="Skill in use now: refuse (exit 3) a candidate worse than it by more than --margin.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Accuracy drop (0..1, e.g. 0.02 = 2 points) the guard tolerates against --incumbent.",
)
@click.option(
    "--ablate",
    is_flag=True,
    help="Also run each skill without each of its sections and files; rank them by effect.",
)
@model_options(multiple_models=True)
@pass_console
def eval_(console: Console, env_name, data, limit, seed, max_turns, bootstrap, lake, split, skill_dirs,
          baseline, incumbent, margin, ablate, models, model_overrides):  # fmt: skip
    """Evaluate skills against a baseline, paired by task, with intervals, cost and a guard.

    \b
    Every model plays every task with the baseline (no skill by default), each --skill and the
    --incumbent. Accuracy gets a bootstrap interval, and so does each paired difference; tokens,
    cost and time are counted. Several models give the transfer matrix. Results go to the lake
    (eval_runs, eval_arms, eval_results, eval_comparisons, skill_usage).
    Exit status 3 when the guard refuses the candidate.
      trace2skill eval --env wtq --split test --model qwen3-122b --skill out/skill --lake lake
    """
    env = _env(env_name, data)
    tasks = _tasks(env, split, limit, seed)
    skills = [_skill(p, "--skill") for p in skill_dirs]
    base = None if baseline.lower() == "none" else _skill(baseline, "--baseline")
    inc = _skill(incumbent, "--incumbent") if incumbent else None
    if inc is not None and len(skills) != 1:
        raise click.UsageError("--incumbent takes exactly one --skill (the candidate)")
    clients, concurrency = _clients(list(models), model_overrides, lake, console)
    settings = _run_settings(model_overrides, max_turns, concurrency, bootstrap, seed, "eval")
    outcome = stages.evaluate(
        lake, env, clients, split=split, skills=skills, baseline=base, incumbent=inc,
        margin=margin, ablate=ablate, limit=limit, tasks=tasks, settings=settings, console=console,
    )  # fmt: skip
    show.arms(console, outcome)
    show.comparisons(console, outcome)
    show.transfer(console, outcome)
    show.usage(console, lake, outcome.eval_id)
    console.info(f"eval {outcome.eval_id}: {outcome.played} episodes played; tables in {lake.uri}")
    if outcome.verdict == "refuse":
        console.error(f"the candidate is not promoted: {outcome.reason}")
        raise SystemExit(EXIT_REFUSED)
    if outcome.verdict == "promote":
        console.info(f"the candidate may be promoted: {outcome.reason}")
