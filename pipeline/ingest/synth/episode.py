"""The neutral form of one synthetic run, before a writer puts it in a file format.

An ``Episode`` holds chat-completions messages (assistant ``tool_calls`` with JSON-string
arguments, role ``tool`` results), the run's outcome and the grader's view: what a correct run
would have done and which failure patterns were injected, so analyses can be checked against
the truth. ``Conversation`` builds the messages; ``Text`` makes filler prose and names from a
seeded generator, so a seed always gives the same bytes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

MODELS = {  # model -> how much more often than average it falls into each failure pattern
    "gpt-4o": 0.8,
    "gpt-4o-mini": 1.4,
    "claude-3-5-sonnet": 0.7,
    "llama-3.1-70b": 1.6,
}
_SYLLABLES = "ka ri to ne sa mu lo vi de pa ran tel mor sin cal ber fin gos hal jun".split()
_FIRST = (
    "Mia Omar Liam Yara Noah Aisha Ivan Sofia Chen Lucas Amara Ethan Nora Ravi Elena Kofi".split()
)
_LAST = "Li Rossi Garcia Kim Patel Silva Brown Novak Sato Khan Muller Okafor Costa Hansen".split()


@dataclass
class Episode:
    family: str
    task_id: str
    model: str
    outcome: str  # success / failure
    messages: list[dict[str, Any]]
    grader: dict[str, Any]
    trial: int = 0
    run_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def reward(self) -> float:
        return 1.0 if self.outcome == "success" else 0.0


class Text:
    """Seeded filler: words, sentences and paragraphs drawn from a fixed pool."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.words = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 3))) for _ in range(1500)]
        self.paragraphs = [self._paragraph() for _ in range(300)]

    def _paragraph(self) -> str:
        sentences = []
        for _ in range(self.rng.randint(3, 7)):
            words = self.rng.choices(self.words, k=self.rng.randint(8, 18))
            sentences.append(" ".join(words).capitalize() + ".")
        return " ".join(sentences)

    def prose(self, n: int) -> str:
        return "\n".join(self.rng.choices(self.paragraphs, k=n))

    def name(self) -> tuple[str, str]:
        return self.rng.choice(_FIRST), self.rng.choice(_LAST)

    def code(self, n: int) -> str:
        return "".join(self.rng.choices(self.words, k=n))


class Conversation:
    """Builds chat-completions messages with tool calls and their results."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.messages: list[dict[str, Any]] = []

    def system(self, text: str) -> None:
        self.messages.append({"role": "system", "content": text})

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def say(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def call(self, name: str, args: dict, result: Any, text: str | None = None) -> None:
        """One assistant tool call and the tool's answer."""
        call_id = "call_" + "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))
        self.messages.append({
            "role": "assistant",
            "content": text,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)}}],
        })  # fmt: skip
        content = result if isinstance(result, str) else json.dumps(result)
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}
        )


def chance(rng: random.Random, p: float, model: str) -> bool:
    """A failure pattern fires with probability p scaled by the model's weakness."""
    return rng.random() < min(0.95, p * MODELS[model])
