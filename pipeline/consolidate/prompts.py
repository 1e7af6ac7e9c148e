"""Prompt files of the model summariser and mergers (`prompts/<name>.md`), read by `pipeline.prompts`.

A prompt file has ``## system`` and ``## user`` sections with ``{placeholder}`` fields. Its version
(``Prompt.tag``: its name and a digest of its text) is part of the run id of every consolidation
that uses it and of the cache key of its requests, so a rerun after an edit asks the model again
rather than reusing old answers.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pipeline import prompts
from pipeline.prompts import Prompt

PROMPTS = Path(__file__).resolve().parent / "prompts"


@cache
def load_prompt(name: str) -> Prompt:
    """The prompt `prompts/<name>.md`."""
    return prompts.load_prompt(PROMPTS, name)
