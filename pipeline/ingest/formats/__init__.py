"""Input format adapters, one module per format, and detection from content.

Every adapter module has ``NAME``, ``sniff(sample, raw) -> bool`` (``sample`` is the first few
parsed records of a JSON / JSONL file, ``[]`` otherwise) and ``read(raw, ctx)`` yielding
``Run`` / ``BadRecord`` / ``Duplicate`` (see ``pipeline.ingest.record``); optionally
``SUFFIXES``, the file name endings it reads beyond the built-ins' (``SUFFIXES`` below), so that
a folder walk picks those files up.

The registry (`adapters()`) is the built-in modules, in the order below, then the modules of the
``trace2skill.formats`` entry-point group of installed packages, sorted by name; detection tries
them in that order, so a built-in format always wins over an installed one that also sniffs the
file, and the built-ins go from the most specific shape to the most general, so that a tau-bench
list (which also holds chat messages) is not read as plain chat, and Phoenix and LangSmith
exports written as Parquet are tried before ``native``, which takes any Parquet file. An entry
point names the
module; its name is the format's name (``--format NAME``) and must be the module's ``NAME``:

    [project.entry-points."trace2skill.formats"]
    shout-log = "mypackage.shout_log"
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from pipeline.errors import UserError
from pipeline.ingest.formats import (
    claude_code,
    langfuse,
    langsmith,
    mapping,
    mini_swe_agent,
    native,
    openai_chat,
    otel,
    phoenix,
    react_text,
    swe_agent,
    taubench,
)
from pipeline.ingest.rawfile import FileError, RawFile
from pipeline.ingest.record import BadRecord

ENTRY_POINT_GROUP = "trace2skill.formats"


class FormatError(UserError, ValueError):
    """An installed format cannot be used: its entry point does not load or lacks a member."""


# Detection order of the built-ins: most specific shape first.
BUILTIN: tuple[ModuleType, ...] = (
    phoenix,
    langsmith,
    native,
    taubench,
    swe_agent,
    mini_swe_agent,
    claude_code,
    langfuse,
    otel,
    openai_chat,
    react_text,
)
# What the built-ins read; a folder walk passes over other files.
SUFFIXES = (".json", ".jsonl", ".ndjson", ".traj", ".txt", ".log", ".parquet")


@functools.cache
def adapters() -> dict[str, ModuleType]:
    """Every format by name, in detection order: the built-ins, then installed ones by name.

    Read once per process (``adapters.cache_clear()`` reads the entry points again)."""
    found = {m.NAME: m for m in BUILTIN}
    installed = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    for ep in installed:
        if ep.name in found or ep.name == mapping.NAME:
            continue  # a built-in name keeps its built-in adapter
        try:
            module = ep.load()
        except Exception as exc:  # a broken plug-in is named, not a traceback deep in ingest
            raise FormatError(f"cannot load format {ep.name!r} ({ep.value}): {exc}") from exc
        missing = [m for m in ("NAME", "sniff", "read") if not hasattr(module, m)]
        if missing:
            raise FormatError(f"format {ep.name!r} ({ep.value}) lacks {', '.join(missing)}")
        if module.NAME != ep.name:
            raise FormatError(
                f"format entry point {ep.name!r} ({ep.value}) names a module whose NAME is "
                f"{module.NAME!r}: they must agree"
            )
        found[ep.name] = module
    return found


def installed_versions() -> tuple[tuple[str, str], ...]:
    """(format, version) of every installed format: its module's ``VERSION`` if it has one, else
    its distribution's version. Part of what an ingest read a file with (`ingest.run`), so a new
    version of a plug-in reads its files again, as a new ADAPTER_VERSION does for the built-ins."""
    built_in = {m.NAME for m in BUILTIN}
    out = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        module = adapters().get(ep.name)
        if ep.name in built_in or module is None:
            continue
        dist = getattr(ep, "dist", None)
        version = getattr(module, "VERSION", None) or (dist.version if dist is not None else "")
        out.append((ep.name, str(version)))
    return tuple(out)


def names() -> list[str]:
    """What ``--format`` takes besides ``auto``, in detection order."""
    return [*adapters(), "mapping:FILE"]


def suffixes() -> tuple[str, ...]:
    """File name endings some format reads (lower case)."""
    extra = (s.lower() for m in adapters().values() for s in getattr(m, "SUFFIXES", ()))
    return tuple(dict.fromkeys((*SUFFIXES, *extra)))


@dataclass(frozen=True)
class ReadContext:
    """What an adapter may need besides the file: defaults given on the command line."""

    model: str | None = None  # model for runs whose source does not name one
    mapping: mapping.MappingSpec | None = None
    companions: tuple[str, ...] = ()  # native Parquet: trajectories tables given alongside


def sample(raw: RawFile, n: int = 5) -> list[Any]:
    """The first few records of a JSON / JSONL file (best effort; [] for other files).

    Unreadable records and bare ``null`` lines say nothing of the format: they are passed over
    here (the adapter reports them as bad records when it reads the file)."""
    if raw.is_parquet:
        return []
    try:
        if raw.is_jsonl:
            records = raw.jsonl()
        elif raw.looks_like_json:
            records = raw.json_records()
        else:
            return []
        out = []
        for _, value in records:
            if value is not None and not isinstance(value, BadRecord):
                out.append(value)
            if len(out) >= n:
                break
        return out
    except FileError:
        return []


def detect(raw: RawFile) -> str | None:
    """The name of the adapter that reads `raw`, judged from its content; None if none does."""
    records = sample(raw)
    for name, adapter in adapters().items():
        if adapter.sniff(records, raw):
            return name
    return None


def adapter(name: str) -> ModuleType:
    if name == "mapping":
        return mapping
    try:
        return adapters()[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(names())}") from None
