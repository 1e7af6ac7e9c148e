"""Behaviour features in words, naming only programs and tools the runs used.

A family of commands is named with the programs seen in it (`searched the files (grep, find)`);
a tool that is a family of its own by its name (`called get_user_details`).
"""

from __future__ import annotations

import polars as pl

# family -> (past tense, gerund) for families of commands and editor operations
FAMILY_WORDS = {
    "test": ("ran the tests", "running the tests"),
    "script": ("ran a script", "running a script"),
    "search": ("searched the files", "searching the files"),
    "view": ("viewed a file", "viewing a file"),
    "edit": ("edited a file", "editing a file"),
    "create": ("created a file", "creating a file"),
    "vcs": ("used version control", "using version control"),
    "install": ("installed packages", "installing packages"),
    "navigate": ("listed or changed folders", "listing or changing folders"),
    "submit": ("submitted", "submitting"),
    "other": ("ran other commands", "running other commands"),
}

FEATURE_WORDS = {
    "tested_after_last_edit": "ran the tests after their last edit",
    "tested_before_edit": "ran the tests before their first edit",
    "reproduced_before_edit": "created a script and ran it before their first edit",
    "viewed_before_edit": "viewed the first file they edited before editing it",
    "many_edits": "made more source edits than the median run",
    "edited_tests": "edited or created test files",
    "ended_on_error": "ended on a failed tool call",
    "long_run": "took more steps than the median run",
}

MAX_PROGRAMS = 3


class Wording:
    def __init__(self, family_programs: pl.DataFrame):
        self.programs: dict[tuple[str, str], list[str]] = {}
        self.tools: set[tuple[str, str]] = set()
        for source, family, program, is_tool in family_programs.select(
            "source", "family", "program", "is_tool"
        ).iter_rows():
            if is_tool:
                self.tools.add((source, family))
            self.programs.setdefault((source, family), []).append(program)

    def is_tool(self, source: str, family: str) -> bool:
        return (source, family) in self.tools or family not in FAMILY_WORDS

    def _family(self, source: str, family: str, tense: int) -> str:
        if self.is_tool(source, family):
            return f"{('called', 'calling')[tense]} {family}"
        words = FAMILY_WORDS[family][tense]
        names = self.programs.get((source, family), [])[:MAX_PROGRAMS]
        return f"{words} ({', '.join(names)})" if names else words

    def phrase(self, source: str, feature: str) -> str:
        """What runs with the feature did, as a relative clause: 'runs that <phrase>'."""
        if feature in FEATURE_WORDS:
            return FEATURE_WORDS[feature]
        kind, _, rest = feature.partition(":")
        if kind == "used":
            return self._family(source, rest, 0)
        if kind == "before":
            a, _, b = rest.partition(":")
            return f"{self._family(source, a, 0)} before {self._family(source, b, 1)}"
        return feature

    def opposite(self, source: str, feature: str) -> str:
        """What runs without the feature did instead, where that is a behaviour of its own."""
        kind, _, rest = feature.partition(":")
        if kind == "before":
            a, _, b = rest.partition(":")
            return f"{self._family(source, b, 0)} before {self._family(source, a, 1)}"
        return f"did not: {self.phrase(source, feature)}"
