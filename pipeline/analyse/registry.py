"""The analysts by name: the built-in ones and those installed packages add (entry points).

Reads nothing from the lake. A name leads to a factory: a built-in's ``module:attribute`` below,
or an entry point of the ``trace2skill.analysts`` group (built-in names win over installed ones).
Names are checked when an analyst is asked for, never at import, so `--help` imports no plug-in.

    [project.entry-points."trace2skill.analysts"]
    keyword = "mypackage.keyword:KeywordAnalyst"

A factory is a class (usually a `BaseAnalyst` subclass) or a function; `build` calls it with the
keywords it accepts among ``options`` (the analyst's options: ``max_lessons`` and its own),
``base_skill`` (the skill folder being deepened, or None), ``model_settings`` (the model layer's
settings, or None) and ``console``, and gets an `Analyst`. Two attributes of the factory are read
before it is called, with `BaseAnalyst`'s defaults: ``needs_model`` (it cannot run offline) and
``option_names`` (the options it takes besides ``max_lessons`` and ``batch_size``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pipeline.analyse.analyst import Analyst, BaseAnalyst, missing_members
from pipeline.analyse.summary import AnalyseError
from pipeline.console import Console
from pipeline.schemas.analysis import ANALYST_NAME
from pipeline.settings import ModelSettings

ENTRY_POINT_GROUP = "trace2skill.analysts"
BUILTIN = {
    "miner": "pipeline.analyse.miner:MinerAnalyst",
    "single": "pipeline.analyse.single:SingleAnalyst",
    "agentic": "pipeline.analyse.agentic:AgenticAnalyst",
}
COMMON_OPTIONS = ("max_lessons", "batch_size")  # every analyst takes them

Factory = Callable[..., Analyst]


def _installed() -> dict[str, Any]:
    """Entry points by name, the first of each name (a name installed twice is one analyst)."""
    found: dict[str, Any] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        found.setdefault(ep.name, ep)
    return found


def available() -> list[str]:
    """Every analyst's name: the built-ins, then installed ones by name."""
    return [*BUILTIN, *(n for n in _installed() if n not in BUILTIN)]


def factory(name: str) -> Factory:
    """The factory of the analyst called `name`."""
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    ep = _installed().get(name)
    if ep is None:
        raise AnalyseError(f"unknown analyst {name!r}; choose {', '.join(available())}")
    if not re.match(ANALYST_NAME, name):
        raise AnalyseError(f"analyst name {name!r} ({ep.value}): use letters, digits, . _ -")
    try:
        return ep.load()
    except Exception as exc:  # a broken plug-in is named, not a traceback deep in analyse
        raise AnalyseError(f"cannot load analyst {name!r} ({ep.value}): {exc}") from exc


def needs_model(name: str) -> bool:
    return bool(getattr(factory(name), "needs_model", BaseAnalyst.needs_model))


def option_names(name: str) -> tuple[str, ...]:
    """The options the analyst takes besides the common ones."""
    return tuple(getattr(factory(name), "option_names", BaseAnalyst.option_names))


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """An option another analyst takes, given to this one, is a mistake worth naming."""
    own = {*COMMON_OPTIONS, *option_names(name)}
    for key in sorted(set(options) - own):
        takers = [n for n in available() if n != name and key in option_names(n)]
        if takers:
            raise AnalyseError(
                f"{key} is an option of the {' and '.join(takers)} analyst, not of {name}"
            )


def build(
    name: str,
    *,
    options: Mapping[str, Any],
    base_skill: str | Path | None,
    model_settings: ModelSettings | None,
    console: Console | None,
) -> Analyst:
    """The analyst called `name`, made by its factory with the keywords it accepts."""
    make = factory(name)
    offered = {
        "options": dict(options),
        "base_skill": base_skill,
        "model_settings": model_settings,
        "console": console,
    }
    params = inspect.signature(make).parameters.values()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    accepted = {p.name for p in params}
    try:
        analyst = make(**{k: v for k, v in offered.items() if takes_any or k in accepted})
    except (ValueError, FileNotFoundError) as exc:  # SettingsError is a ValueError
        raise AnalyseError(str(exc)) from None
    check(analyst)
    if analyst.name != name:
        raise AnalyseError(f"analyst {name!r} made an analyst that calls itself {analyst.name!r}")
    return analyst


def check(analyst: Analyst) -> None:
    """Every member of the `Analyst` protocol is there (a `BaseAnalyst` has them all)."""
    missing = missing_members(analyst)
    if missing:
        raise AnalyseError(
            f"analyst {type(analyst).__name__} lacks {', '.join(missing)} "
            "(subclass pipeline.analyse.analyst.BaseAnalyst for the defaults)"
        )
    if not re.match(ANALYST_NAME, analyst.name):
        raise AnalyseError(f"analyst name {analyst.name!r}: use letters, digits, . _ -")
