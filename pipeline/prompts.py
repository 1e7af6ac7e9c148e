"""Prompt files, read and filled: one file format and one placeholder rule for every stage.

Reads ``<folder>/<name>-v<N>.md`` (the highest N) or, for a prompt without versions,
``<folder>/<name>.md``; each stage keeps its prompts in its own folder (package data, see
setup.py). A prompt file has ``## <section>`` headings (``system`` and ``user``, plus any a stage
fills in itself), HTML comments for notes (never sent) and ``@include <file>`` lines that pull in
the sections of another file of the same folder (the including file's own sections win).

Only ``{lower_case}`` names are placeholders, so JSON braces in a prompt are written as they are;
every placeholder of a section must be given a value. A prompt's version is its file's ``vN``
(when it has one) and a digest of its text and of every file it includes, so any edit changes the
configuration id of what uses the prompt and the cache key of its requests: a rerun asks the model
again rather than mixing answers to two prompts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline import ids

_SECTION = re.compile(r"^## ([a-z_]+)\s*$", re.M)
_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_INCLUDE = re.compile(r"^@include ([A-Za-z0-9_.-]+\.md)\s*$", re.M)
_FIELD = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str  # "v<N>-<digest>", or "<digest>" for a file without a version
    sections: dict[str, str]

    @property
    def tag(self) -> str:
        """``<name>-<version>``: what result rows and request cache keys carry."""
        return f"{self.name}-{self.version}"

    def fields(self) -> set[str]:
        """Every placeholder of every section."""
        return {f for text in self.sections.values() for f in _FIELD.findall(text)}

    def text(self, section: str, /, **values: object) -> str:
        """One section with its placeholders filled; values it does not use are ignored."""
        if section not in self.sections:
            raise KeyError(f"prompt {self.name} has no section {section!r}")

        def fill(m: re.Match) -> str:
            if m.group(1) not in values:
                raise KeyError(f"prompt {self.name}: no value for {{{m.group(1)}}}")
            return str(values[m.group(1)])

        return _FIELD.sub(fill, self.sections[section])

    def messages(self, **values: object) -> list[dict[str, str]]:
        """The system and user messages with their placeholders filled."""
        return [
            {"role": "system", "content": self.text("system", **values)},
            {"role": "user", "content": self.text("user", **values)},
        ]


def _sections(text: str) -> dict[str, str]:
    parts = _SECTION.split(_INCLUDE.sub("", _COMMENT.sub("", text)))
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def prompt_file(folder: Path, name: str) -> tuple[Path, str | None]:
    """The file of prompt `name` and its version (``vN``), None for an unversioned file."""
    versions = {}
    for path in folder.glob(f"{name}-v*.md"):
        m = re.fullmatch(rf"{re.escape(name)}-v(\d+)", path.stem)
        if m:
            versions[int(m.group(1))] = path
    if versions:
        newest = max(versions)
        return versions[newest], f"v{newest}"
    path = folder / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt {name!r} in {folder}")
    return path, None


def load_prompt(folder: Path, name: str) -> Prompt:
    """Prompt `name` of `folder`, its newest version when its files carry versions."""
    path, file_version = prompt_file(folder, name)
    text = path.read_text(encoding="utf-8")
    texts = [text]
    sections: dict[str, str] = {}
    for included in _INCLUDE.findall(_COMMENT.sub("", text)):
        inc = folder / included
        if not inc.is_file():
            raise FileNotFoundError(f"{path} includes {included}, which is not in {folder}")
        inc_text = inc.read_text(encoding="utf-8")
        texts.append(inc_text)
        sections |= _sections(inc_text)
    sections |= _sections(text)
    if not {"system", "user"} <= set(sections):
        raise ValueError(f"{path} needs a '## system' and a '## user' section")
    content = ids.digest(*texts, length=8)
    return Prompt(name, f"{file_version}-{content}" if file_version else content, sections)
