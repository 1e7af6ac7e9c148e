"""The environment plug-in interface: tasks, tools and a scorer, looked up by name.

An environment is anything with the four members of ``Environment``. The built-in ones are
registered below; others come from the ``trace2skill.environments`` entry-point group of an
installed package, from ``register()`` at import time, or from a ``module:factory`` spec given as
``--env``. A factory takes the keyword ``data`` (a folder or None for the built-in sample) and
returns the environment.

    [project.entry-points."trace2skill.environments"]
    mytasks = "mypackage.envs:MyEnvironment"
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from pipeline.llm.tools import Tool, ToolError

ENTRY_POINT_GROUP = "trace2skill.environments"


@dataclass(frozen=True)
class Task:
    """One task: what the agent is told, and what only the scorer sees."""

    task_id: str
    prompt: str
    gold: Any  # JSON-serialisable ground truth; goes to the trajectory's meta.grader
    meta: dict = field(default_factory=dict)  # JSON-serialisable facts shown in the lake


# One tool shape for every loop: the evaluation agent's and the agentic analyst's. A tool with
# ``submits=True`` ends the episode: its arguments' ``answer`` is what gets scored.
__all__ = ["Environment", "Score", "Task", "Tool", "ToolError"]


@dataclass(frozen=True)
class Score:
    correct: bool
    reward: float
    detail: str = ""  # why, in words (shown in the lake next to the gold answer)


@runtime_checkable
class Environment(Protocol):
    """What the runner needs from an environment."""

    name: str  # short, used in source names: <name>-<split>
    system_prompt: str  # the agent's instructions before any skill

    def tasks(self, split: str, limit: int | None = None, seed: int = 0) -> list[Task]:
        """The split's tasks, in a stable order; a seeded sample of ``limit`` of them if given."""
        ...

    def tools(self, task: Task) -> list[Tool]:
        """Fresh tools for one episode of ``task`` (state lives and dies with the list)."""
        ...

    def score(self, task: Task, answer: Any) -> Score:
        """Score the submitted answer (None when the agent never submitted)."""
        ...


Factory = Callable[..., Environment]
_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make an environment available under ``name`` (``--env name``)."""
    _REGISTRY[name] = factory


def _builtins() -> None:
    from pipeline.evaluate.wikitablequestions.env import WikiTableQuestions

    _REGISTRY.setdefault("wtq", WikiTableQuestions)
    _REGISTRY.setdefault("wikitablequestions", WikiTableQuestions)


def available() -> list[str]:
    _builtins()
    names = set(_REGISTRY)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def load(name: str, **options: Any) -> Environment:
    """The environment called ``name`` (registry, entry point, or ``module:factory``)."""
    _builtins()
    factory: Factory | None = _REGISTRY.get(name)
    if factory is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if found:
            factory = found[0].load()
        elif ":" in name:
            module, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise LookupError(f"cannot import environment {name!r}: {exc}") from exc
        else:
            raise LookupError(
                f"unknown environment {name!r}; available: {', '.join(available())} "
                "(or give module:factory)"
            )
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs = {k: v for k, v in options.items() if takes_any or k in accepted}
    unused = sorted(k for k, v in options.items() if k not in kwargs and v is not None)
    if unused:
        raise LookupError(f"environment {name!r} does not take option(s) {unused}")
    env = factory(**kwargs)
    missing = [
        m for m in ("name", "system_prompt", "tasks", "tools", "score") if not hasattr(env, m)
    ]
    if missing:
        raise TypeError(f"environment {name!r} lacks {missing}")
    return env
