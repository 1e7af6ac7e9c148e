"""The two stages: ``rollout`` (one model, optional skill, runs into the lake) and ``evaluate``
(models x skills, paired by task, with ablation and the regression guard).

Both read an environment's tasks and write ``trajectories``/``steps`` (source ``<env>-<split>``)
and the eval tables (``eval_runs``, ``eval_arms``, ``eval_results``, ``eval_comparisons``,
``skill_usage``). Model clients are passed in, one per model name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from pipeline import audits
from pipeline.console import Console
from pipeline.evaluate.env import Environment, Task
from pipeline.evaluate.record import Arm
from pipeline.evaluate.run import RunSettings, eval_id_of, run_arms
from pipeline.evaluate.skill import Skill
from pipeline.evaluate.summary import guard, run_row, summarise
from pipeline.lake import Lake
from pipeline.llm.client import run_sync

NO_SKILL = "no skill"


@dataclass(frozen=True)
class EvalRunResult:
    """One rollout or evaluation: its ``eval_runs`` row with the arms and comparisons it wrote."""

    eval_id: str
    played: int  # episodes played now (the rest were in the lake already)
    run: pl.DataFrame  # eval_runs row
    arms: pl.DataFrame  # eval_arms rows
    comparisons: pl.DataFrame  # eval_comparisons rows

    @property
    def verdict(self) -> str | None:
        return self.run.item(0, "verdict")

    @property
    def reason(self) -> str | None:
        return self.run.item(0, "verdict_reason")


def labels(skills: list[Skill]) -> list[str]:
    """Folder names, with parents added where two skills share one."""
    names = [Path(s.root or s.name).name for s in skills]
    out = []
    for s, name in zip(skills, names, strict=True):
        if names.count(name) > 1 and s.root:
            # the folder the user named, not where a link to it leads (a skill consolidate
            # wrote links to a versioned folder)
            parent = Path(os.path.abspath(s.root)).parent.name
            name = f"{parent}/{name}"
        out.append(name)
    return out


def _execute(
    kind: str,
    lake: Lake,
    env: Environment,
    llms: Mapping[str, object],
    arms: list[Arm],
    *,
    split: str,
    limit: int | None,
    settings: RunSettings,
    margin: float | None,
    extra: dict,
    tasks: list[Task] | None,
    console: Console,
) -> EvalRunResult:
    started = time.perf_counter()
    if tasks is None:
        tasks = env.tasks(split, limit, settings.seed)
    if not tasks:
        raise ValueError(f"environment {env.name} has no tasks in split {split!r}")
    eval_id = eval_id_of(kind, env, split, tasks, arms, settings.agent)
    console.info(f"{kind} {eval_id}: {len(tasks)} tasks of {env.name}/{split} x {len(arms)} arm(s)")
    played = run_sync(
        run_arms(
            lake,
            env,
            tasks,
            arms,
            llms,
            eval_id=eval_id,
            kind=kind,
            split=split,
            settings=settings,
            console=console,
        ),
        release=list(llms.values()),
    )
    audits.after(lake, kind, console)
    arm_frame, comparisons = summarise(
        lake, eval_id, arms, resamples=settings.resamples, seed=settings.seed
    )
    verdict = guard(comparisons, margin) if margin is not None else (None, None)
    settings_json = json.dumps(
        {
            **extra,
            "limit": limit,
            "agent": asdict(settings.agent),
            "concurrency": settings.concurrency,
            "bootstrap_resamples": settings.resamples,
            "margin": margin,
        },
        sort_keys=True,
        default=str,
    )
    run = run_row(eval_id, kind, env, split, len(tasks), arm_frame, settings_json, verdict, started)
    lake.write_part("eval_arms", arm_frame, part=eval_id)
    lake.write_part("eval_comparisons", comparisons, part=eval_id)
    lake.write_part("eval_runs", run, part=eval_id)
    return EvalRunResult(eval_id, played, run, arm_frame, comparisons)


def rollout(
    lake: Lake,
    env: Environment,
    llm: object,
    *,
    model: str,
    split: str,
    skill: Skill | None = None,
    limit: int | None = None,
    tasks: list[Task] | None = None,
    settings: RunSettings | None = None,
    console: Console,
) -> EvalRunResult:
    """Run ``model`` (with ``skill`` if given) on the split's tasks (or ``tasks``, already drawn
    from it); episodes go to the lake."""
    settings = settings or RunSettings()
    label = labels([skill])[0] if skill else NO_SKILL
    arm = Arm("rollout", model, skill, label)
    extra = {"model": model, "skill": skill and skill.root}
    return _execute(
        "rollout",
        lake,
        env,
        {model: llm},
        [arm],
        split=split,
        limit=limit,
        settings=settings,
        margin=None,
        extra=extra,
        tasks=tasks,
        console=console,
    )


def evaluate(
    lake: Lake,
    env: Environment,
    llms: Mapping[str, object],
    *,
    split: str,
    skills: list[Skill],
    baseline: Skill | None = None,
    incumbent: Skill | None = None,
    margin: float = 0.0,
    ablate: bool = False,
    limit: int | None = None,
    tasks: list[Task] | None = None,
    settings: RunSettings | None = None,
    console: Console,
) -> EvalRunResult:
    """Every model with the baseline, each skill, the incumbent and (``ablate``) each skill
    without one of its sections or files, on the same tasks; paired comparisons; the guard."""
    settings = settings or RunSettings()
    if not skills:
        raise ValueError("give at least one skill to evaluate")
    if incumbent is not None and len(skills) != 1:
        raise ValueError("the regression guard compares one candidate skill with the incumbent")
    named = labels(
        [*skills, *([baseline] if baseline else []), *([incumbent] if incumbent else [])]
    )
    skill_labels = named[: len(skills)]
    base_label = named[len(skills)] if baseline else NO_SKILL
    inc_label = named[-1] if incumbent else None
    arms: list[Arm] = []
    for model in llms:
        arms.append(Arm("baseline", model, baseline, base_label))
        arms += [
            Arm("candidate", model, s, lab) for s, lab in zip(skills, skill_labels, strict=True)
        ]
        if incumbent is not None:
            arms.append(Arm("incumbent", model, incumbent, inc_label))
        if ablate:
            for s, lab in zip(skills, skill_labels, strict=True):
                for unit in s.units():
                    prefix = f"{lab} " if len(skills) > 1 else ""
                    arms.append(
                        Arm("ablation", model, s.without(unit), f"{prefix}without: {unit}", unit)
                    )
    extra = {
        "models": list(llms),
        "skills": [s.root for s in skills],
        "baseline": baseline.root if baseline else None,
        "incumbent": incumbent.root if incumbent else None,
        "ablate": ablate,
    }
    return _execute(
        "eval",
        lake,
        env,
        llms,
        arms,
        split=split,
        limit=limit,
        settings=settings,
        margin=margin if incumbent is not None else None,
        extra=extra,
        tasks=tasks,
        console=console,
    )
