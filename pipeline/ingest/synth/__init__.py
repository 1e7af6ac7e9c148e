"""Synthetic trajectories in any supported format: realistic, varied, deterministic per seed.

``write_synthetic(out_dir, n, format=..., seed=..., family=...)`` writes ``n`` runs (ingesting
the folder gives exactly ``n`` trajectories). Task families: ``booking`` (an airline agent with
tools), ``coding`` (a shell agent fixing a bug, with test failures) and ``qa`` (ReAct search).
Each family injects recurring failure patterns (a tool that rejects a date format, an update
without the lookup it needs, identical calls repeated in a loop, tests run before installing, an
edit that did not apply, ...) at rates that differ by model, and records them in the grader's
view (``meta.grader.injected`` once ingested) so an analysis can be scored against the truth.
``swebench``, written only when asked for, runs every task several times with behaviour effects
planted on the outcome (see ``swebench``), for scoring a contrastive miner.

Formats and families: openai-chat, parquet and otel mix booking and coding; tau-bench is booking;
mini-swe-agent, swe-agent and claude-code are coding (outcomes in ``report.json`` /
``labels.csv``, as real runs keep them apart); react-text is qa. openai-chat, parquet,
mini-swe-agent and swe-agent also take ``swebench``; its attempts share their task's instance
id, which a report cannot tell apart, so SWE files carry their own ``info.resolved``. Runs are
written in shards (files or folders) in parallel worker processes; a shard's bytes depend only
on the seed, the format, the family asked for and the shard number.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

from pipeline import executor
from pipeline.ingest.synth import booking, coding, qa, swebench
from pipeline.ingest.synth.episode import MODELS, Episode, Text
from pipeline.ingest.synth.writers import WRITERS

FORMATS = list(WRITERS)
FAMILIES = {
    "openai-chat": ("booking", "coding"),
    "parquet": ("booking", "coding"),
    "tau-bench": ("booking",),
    "mini-swe-agent": ("coding",),
    "swe-agent": ("coding",),
    "claude-code": ("coding",),
    "otel": ("booking", "coding"),
    "react-text": ("qa",),
}
ON_REQUEST = {"swebench": ("openai-chat", "parquet", "mini-swe-agent", "swe-agent")}
FAMILY_NAMES = sorted({f for fs in FAMILIES.values() for f in fs} | set(ON_REQUEST))
GENERATORS = {"booking": booking.episode, "coding": coding.episode, "qa": qa.episode}
SHARD_RUNS = {"tau-bench": 1000, "react-text": 200}  # runs per shard (default 2000)
REACT_QUESTIONS = 100  # questions attempted per Reflexion trial
TRIALS = 4  # runs per task: run i is trial i % TRIALS of task i // TRIALS
POOL_MIN_RUNS = 3000


def families_of(fmt: str) -> list[str]:
    """The families `fmt` can hold: its usual mix, then those written only when asked for."""
    return [*FAMILIES[fmt], *(f for f, formats in ON_REQUEST.items() if fmt in formats)]


def shard_episodes(
    fmt: str, seed: int, shard: int, start: int, stop: int, family: str | None = None
) -> list[Episode]:
    rng = random.Random(f"synth:{seed}:{fmt}:{shard}")
    text = Text(rng)
    if fmt == "react-text":
        return _reflexion_trials(rng, text, seed, start, stop)
    if family == "swebench":
        return _swebench_attempts(rng, text, seed, start, stop)
    families = FAMILIES[fmt] if family is None else (family,)
    models = list(MODELS)
    shard_model = models[shard % len(models)]  # tau-bench files hold one model each
    episodes = []
    for i in range(start, stop):
        family = families[rng.randrange(len(families))]
        model = shard_model if fmt == "tau-bench" else rng.choice(models)
        e = GENERATORS[family](rng, text, model, i // TRIALS)
        e.trial = i % TRIALS
        e.run_id = f"{family}-{seed}-{i:07d}"
        episodes.append(e)
    return episodes


def _swebench_attempts(
    rng: random.Random, text: Text, seed: int, start: int, stop: int
) -> list[Episode]:
    """Run i is attempt i % RUNS_PER_TASK of task i // RUNS_PER_TASK, by a model drawn per run."""
    models = list(MODELS)
    episodes = []
    for i in range(start, stop):
        e = swebench.episode(rng, text, rng.choice(models), seed, i // swebench.RUNS_PER_TASK)
        e.trial = i % swebench.RUNS_PER_TASK
        e.run_id = f"swebench-{seed}-{i:07d}"
        episodes.append(e)
    return episodes


def _reflexion_trials(
    rng: random.Random, text: Text, seed: int, start: int, stop: int
) -> list[Episode]:
    """qa runs in Reflexion trials: every trial retries the questions not yet solved, topped up
    with new questions to REACT_QUESTIONS, until the shard's number of runs is reached."""
    model = rng.choice(list(MODELS))  # one agent per log, as one experiment
    episodes: list[Episode] = []
    unsolved: list[int] = []
    next_question = start
    trial = 0
    while len(episodes) < stop - start:
        batch = unsolved + list(
            range(next_question, next_question + REACT_QUESTIONS - len(unsolved))
        )
        next_question += REACT_QUESTIONS - len(unsolved)
        batch = batch[: stop - start - len(episodes)]
        unsolved = []
        for q in batch:
            e = qa.episode(rng, text, model, q)
            e.trial = trial
            e.run_id = f"qa-{seed}-{start + len(episodes):07d}"
            episodes.append(e)
            if e.outcome == "failure":
                unsolved.append(q)
        trial += 1
    return episodes


def _write_shard(args: tuple) -> tuple[list[Path], list[tuple[str, str, list]]]:
    fmt, seed, shard, start, stop, out, family = args
    episodes = shard_episodes(fmt, seed, shard, start, stop, family)
    paths = WRITERS[fmt](shard, episodes, Path(out))
    # A report keyed by instance cannot tell apart attempts that share one: their files carry
    # their outcome instead (see writers).
    outcomes = [
        (e.run_id, e.outcome, e.grader.get("injected", []))
        for e in episodes
        if not e.meta.get("shared_task")
    ]
    return paths, outcomes


def write_synthetic(
    out_dir: str | Path,
    n: int,
    *,
    format: str = "openai-chat",
    seed: int = 0,
    family: str | None = None,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write n synthetic runs under out_dir in `format`; returns the files written.
    `family` picks one task family (default: the format's usual mix).
    `progress(k)` is called as each shard of k runs is done."""
    if format not in WRITERS:
        raise ValueError(f"unknown format {format!r}; synth writes {', '.join(FORMATS)}")
    if family is not None and family not in families_of(format):
        can_be = ", ".join(families_of(format))
        raise ValueError(f"{format} runs cannot be of family {family!r}; they can be {can_be}")
    if n < 1:
        raise ValueError("the number of trajectories must be at least 1")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: write synthetic runs into a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    size = SHARD_RUNS.get(format, 2000)
    tasks = [
        (format, seed, k, s, min(n, s + size), str(out), family)
        for k, s in enumerate(range(0, n, size))
    ]
    workers = min(jobs or os.cpu_count() or 1, len(tasks)) if n >= POOL_MIN_RUNS else 1
    results = []

    def commit(task: tuple, result: tuple) -> bool:
        results.append(result)
        if progress:
            progress(task[4] - task[3])
        return False

    executor.run(tasks, executor.processes(_write_shard, workers), commit)
    paths = [p for shard_paths, _ in results for p in shard_paths]
    outcomes = [o for _, shard_outcomes in results for o in shard_outcomes]
    if outcomes and format in ("mini-swe-agent", "swe-agent"):
        report = out / "report.json"
        report.write_text(json.dumps({
            "resolved_ids": [r for r, o, _ in outcomes if o == "success"],
            "unresolved_ids": [r for r, o, _ in outcomes if o == "failure"],
            "injected": {r: i for r, _, i in outcomes},
        }, indent=1))  # fmt: skip
        paths.append(report)
    elif outcomes and format == "claude-code":
        labels = out / "labels.csv"
        with labels.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["trajectory_id", "outcome", "injected"])
            w.writerows((r, o, " ".join(i)) for r, o, i in outcomes)
        paths.append(labels)
    return paths
