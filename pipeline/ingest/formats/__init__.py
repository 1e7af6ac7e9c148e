"""Input format adapters, one module per format, and detection from content.

Every adapter module has ``NAME``, ``sniff(sample, raw) -> bool`` (``sample`` is the first few
parsed records of a JSON / JSONL file, ``[]`` otherwise) and ``read(raw, ctx)`` yielding
``Run`` / ``BadRecord`` / ``Duplicate`` (see ``pipeline.ingest.record``). Detection tries the
adapters in the order below, from the most specific shape to the most general, so that a
tau-bench list (which also holds chat messages) is not read as plain chat, and Phoenix and
LangSmith exports written as Parquet are tried before ``native``, which takes any Parquet file.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

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

ADAPTERS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
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
}
NAMES = [*ADAPTERS, "mapping:FILE"]


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
    for name, adapter in ADAPTERS.items():
        if adapter.sniff(records, raw):
            return name
    return None


def adapter(name: str) -> ModuleType:
    if name == "mapping":
        return mapping
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(NAMES)}") from None
