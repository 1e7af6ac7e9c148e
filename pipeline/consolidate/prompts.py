"""Prompt files of the model summariser and mergers (`prompts/<name>.md`), read and filled.

A prompt file has ``## system`` and ``## user`` sections (HTML comments are notes, not sent) with
``{placeholder}`` fields. Only ``{lower_case}`` names are placeholders, so JSON braces in a prompt
need no escaping, and every placeholder must be given a value. A prompt's version is its name and
a digest of its text: editing a prompt changes the run id of every consolidation that uses it and
the cache key of its requests, so a rerun asks the model again rather than reusing old answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline import ids

PROMPTS = Path(__file__).resolve().parent / "prompts"
_SECTION = re.compile(r"^## ([a-z_]+)\s*$", re.M)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_FIELD = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str  # "<name>-<digest of the file>"
    sections: dict[str, str]

    def fields(self) -> set[str]:
        return {f for text in self.sections.values() for f in _FIELD.findall(text)}

    def text(self, part: str, /, **values: object) -> str:
        def fill(m: re.Match) -> str:
            if m.group(1) not in values:
                raise KeyError(f"prompt {self.name}: no value for {{{m.group(1)}}}")
            return str(values[m.group(1)])

        return _FIELD.sub(fill, self.sections[part])

    def messages(self, **values: object) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.text("system", **values)},
            {"role": "user", "content": self.text("user", **values)},
        ]


@cache
def load_prompt(name: str) -> Prompt:
    """The prompt `prompts/<name>.md`."""
    path = PROMPTS / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt {path}")
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(_COMMENT.sub("", text))
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if not {"system", "user"} <= set(sections):
        raise ValueError(f"{path} needs a '## system' and a '## user' section")
    return Prompt(name, f"{name}-{ids.digest(text, length=8)}", sections)
