"""The analyst interface: what the map asks of every analyst (the miner, `single`, `agentic`, and
those installed packages add: `registry.py`).

An analyst has a `name` (miner / single / agentic / ...), a `model` ('offline' when it uses
none), a `prompt_version` (of its prompt files, or of the miner's rule set) and `settings`
(everything else that changes its output). Those four make its configuration id: a trajectory
already analysed ok under the same configuration is skipped by the map.

The map calls `prepare(lake, con)` once per run (pool-level work: the miner's statistics over
the whole lake; a model analyst opens its client), then `analyse_batch(batch)` for each batch
of trajectories, which returns one `AnalysisResult` per trajectory: lessons, usage (model calls,
tokens, cost), or an error. An exception inside one trajectory's analysis must become that
trajectory's error outcome; `BaseAnalyst` does that for analysts that work one trajectory at a
time.

The rest of the protocol has defaults in `BaseAnalyst`; an analyst sets what applies to it:
`cpu_bound = True` lets the map spread its batches over worker processes (it must pickle);
`reports_progress = True` makes the map hand it its progress callback as `advance` (advanced per
trajectory, not per batch); `analyse_stream(batches, done)` replaces the batch loop (requests that
overlap across batches); `stop_reason()` returning a text makes the map stop after the current
batch (a spent budget); `close()` is called once at the end of the run, whatever happened (it
flushes the model call log); `model_settings` is the model layer's settings of an analyst that
talks to a model (the Ray map shares its concurrency and budgets out). Read from the class before
it is made: `needs_model` (it cannot run offline) and `option_names` (the options it takes besides
``max_lessons`` and ``batch_size``).
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import polars as pl

from pipeline import ids
from pipeline.lake import Lake

if TYPE_CHECKING:
    from pipeline.settings import ModelSettings


@dataclass
class LessonDraft:
    """A lesson as an analyst states it; the map adds ids, analyst fields and timestamps."""

    kind: str  # failure_cause / failure_lesson / success_lesson / workflow
    title: str
    content: str
    evidence_steps: list[int]
    rule: str | None = None
    tool_name: str | None = None
    confidence: float = 0.5
    target_section: str | None = None
    description: str | None = None
    op: str = "add"


@dataclass
class AnalysisUsage:
    """Model use of an analysis (one trajectory's, or summed over a run), as the `analyses` table
    records it. Not `pipeline.llm.Usage`: there `n_calls` counts requests sent to the server,
    here every answer the analysis used, cached ones included."""

    n_calls: int = 0  # model calls, cache hits included
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0

    def add(self, other: AnalysisUsage) -> None:
        self.n_calls += other.n_calls
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd
        self.cache_hits += other.cache_hits


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class AnalysisResult:
    """One trajectory's analysis: lessons and usage, or the error that stopped it."""

    trajectory_id: str
    lessons: list[LessonDraft] = field(default_factory=list)
    usage: AnalysisUsage = field(default_factory=AnalysisUsage)
    error: str | None = None
    started_at: dt.datetime = field(default_factory=now)
    finished_at: dt.datetime = field(default_factory=now)
    rejected: Counter = field(default_factory=Counter)  # reason -> lessons rejected
    judged_outcome: str | None = None  # success / failure, when the model judged the run
    judge_reason: str | None = None
    judge_confidence: float | None = None
    n_tool_calls: int | None = None  # agentic analyst only


@dataclass
class Batch:
    """Trajectories to analyse together, with all their steps."""

    trajectories: pl.DataFrame
    steps: pl.DataFrame

    def items(self) -> Iterator[tuple[dict[str, Any], pl.DataFrame]]:
        """(trajectory row, its steps sorted by step_idx) in trajectory_id order."""
        by_run = {
            key[0]: frame.sort("step_idx")
            for key, frame in self.steps.partition_by("trajectory_id", as_dict=True).items()
        }
        empty = self.steps.clear()
        for row in self.trajectories.sort("trajectory_id").iter_rows(named=True):
            yield row, by_run.get(row["trajectory_id"], empty)


class Analyst(Protocol):
    name: str
    model: str
    prompt_version: str
    settings: dict[str, Any]
    # Optional (defaults in BaseAnalyst; see the module's docstring).
    needs_model: bool
    option_names: tuple[str, ...]
    cpu_bound: bool
    reports_progress: bool
    advance: Callable[[int], None]
    model_settings: ModelSettings | None
    analyse_stream: Callable[..., None] | None  # (batches, done): see the docstring

    def prepare(self, lake: Lake, con: duckdb.DuckDBPyConnection) -> None: ...

    def analyse_batch(self, batch: Batch) -> list[AnalysisResult]: ...

    def stop_reason(self) -> str | None: ...

    def close(self) -> None: ...


MEMBERS = (
    "name", "model", "prompt_version", "settings", "needs_model", "option_names", "cpu_bound",
    "reports_progress", "advance", "model_settings", "analyse_stream", "prepare",
    "analyse_batch", "stop_reason", "close",
)  # fmt: skip


def missing_members(analyst: object) -> list[str]:
    """The members of `Analyst` that `analyst` lacks."""
    return [m for m in MEMBERS if not hasattr(analyst, m)]


def error_reason(exc: BaseException) -> str:
    """One line for an error row: the exception and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def config_id(analyst: Analyst) -> str:
    """Digest of everything that decides an analyst's output (not the trajectory)."""
    return ids.digest(
        "analysis-config", analyst.name, analyst.model, analyst.prompt_version, analyst.settings
    )


class BaseAnalyst:
    """The protocol's defaults: an offline analyst that runs `analyse_one` per trajectory in the
    map's process, turning each exception into that run's error outcome."""

    name = "base"
    model = "offline"
    prompt_version = "0"
    needs_model = False
    option_names: tuple[str, ...] = ()
    cpu_bound = False
    reports_progress = False
    model_settings: ModelSettings | None = None
    analyse_stream = None  # or a method: see the module's docstring

    def __init__(self, options: dict[str, Any] | None = None):
        self.settings = dict(options or {})

    def advance(self, n: int = 1) -> None:
        return None

    def prepare(self, lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
        return None

    def stop_reason(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    def analyse_one(
        self, trajectory: dict[str, Any], steps: pl.DataFrame
    ) -> tuple[list[LessonDraft], AnalysisUsage]:
        raise NotImplementedError

    def analyse_batch(self, batch: Batch) -> list[AnalysisResult]:
        outcomes = []
        for row, steps in batch.items():
            started = now()
            try:
                lessons, usage = self.analyse_one(row, steps)
                outcomes.append(
                    AnalysisResult(row["trajectory_id"], lessons, usage, None, started, now())
                )
            except Exception as exc:  # one bad trajectory must not stop the batch
                outcomes.append(
                    AnalysisResult(
                        row["trajectory_id"], [], AnalysisUsage(), error_reason(exc), started, now()
                    )
                )
        return outcomes
