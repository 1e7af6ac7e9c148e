"""SWE-agent ``*.traj`` files: ``{"trajectory": [...], "history": [...], "info": {...},
"replay_config": ..., "environment": ...}``.

Each ``trajectory`` step (``thought``, ``action``, ``observation``, ``response``) becomes an
assistant tool call (arguments ``{"command": action}``; the thought is its text) and its result.
The tool is the action's first word when that is one of SWE-agent's own commands (its tool
bundles' ``str_replace_editor``, ``open``, ``edit``, ``submit``, ..., or a command the run's
system prompt documents); any other action ran in the shell and is a ``bash`` call. A step
without an action (a reply SWE-agent could not parse) is an assistant message.
The run opens with the system prompt and the first task message from ``history`` (demonstrations
are skipped). SWE-agent does not record exit codes, so an observation is an error when it reads
like one (a traceback, ``command not found``, ``No such file``, a rejected edit, failing tests,
...).

Task id: the problem statement id from ``replay_config``, else the file name; model:
``replay_config.agent.model.name``; outcome: ``info.resolved`` where present, else unknown
(``--labels`` can give it, e.g. a SWE-bench report). Exit status, submission and model stats go
to ``meta``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import (
    BadRecord,
    Run,
    StepBuilder,
    json_type,
    looks_like_error,
    normalize_outcome,
    text_of,
)

NAME = "swe-agent"
AGENT = "swe-agent"
_SHELL_ERROR = re.compile(
    r"Traceback \(most recent call last\)|command not found|No such file or directory"
    r"|Your proposed edit has introduced new syntax error|^\s*(?:\w+Error|Error):"
    r"|Usage: |Invalid command|is not a valid|did not appear verbatim"
    r"|^E\s+\w+(?:Error|Exception)\b|^(?:FAILED|ERROR) |\b\d+ (?:failed|errors?)\b",
    re.M,
)

# The commands of SWE-agent's tool bundles (0.x config/commands, 1.x tools/*): everything else an
# agent writes is run by the environment's bash session. `exit` is intercepted by the agent.
BUNDLE_COMMANDS = frozenset({
    "str_replace_editor", "open", "goto", "scroll_up", "scroll_down", "create", "edit", "insert",
    "find_file", "search_dir", "search_file", "submit", "filemap", "view_image", "exit_forfeit",
    "exit", "open_site", "close_site", "screenshot_site", "click_mouse", "double_click_mouse",
    "move_mouse", "drag_mouse", "type_text", "scroll_on_page", "execute_script_on_page",
    "navigate_back", "navigate_forward", "reload_page", "wait_time", "press_keys_on_page",
    "set_browser_window_size", "get_console_output",
})  # fmt: skip
# How 0.x system prompts document a command: "open:\n  docstring: opens the file ..."
_COMMAND_DOC = re.compile(r"^(\w+):\n[ \t]+docstring:", re.M)


def sniff(sample: list[Any], raw: RawFile) -> bool:
    doc = sample[0] if len(sample) == 1 else None
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("trajectory"), list)
        and ("history" in doc or "info" in doc)
    )


def observation_error(text: str | None) -> bool:
    return looks_like_error(text) or bool(text and _SHELL_ERROR.search(text[:4000]))


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    for _, doc in raw.json_records():
        if isinstance(doc, BadRecord):
            yield doc
            continue
        trajectory = doc.get("trajectory") if isinstance(doc, dict) else None
        if not isinstance(trajectory, list) or not trajectory:
            yield BadRecord("document", "record without steps: 'trajectory' is missing or empty")
            continue
        try:
            yield _run(doc, trajectory, raw, ctx)
        except ValueError as exc:
            yield BadRecord("document", str(exc))


def _run(doc: dict, trajectory: list, raw: RawFile, ctx) -> Run:
    b = StepBuilder()
    history = doc.get("history") if isinstance(doc.get("history"), list) else []
    opening = [h for h in history if isinstance(h, dict) and not h.get("is_demo")]
    commands = BUNDLE_COMMANDS | documented_commands(opening)
    msg = 0
    for h in opening[:2]:  # the system prompt and the task as the agent first saw them
        if h.get("role") in ("system", "user"):
            b.message(h["role"], text_of(h.get("content")) or "", msg)
            msg += 1
    for i, step in enumerate(trajectory):
        if not isinstance(step, dict):
            raise ValueError(f"trajectory step {i}: expected an object, got {json_type(step)}")
        action = str(step.get("action") or "").strip()
        thought = step.get("thought") or step.get("response") or ""
        if not action:
            b.message("assistant", thought, msg)
            msg += 1
            continue
        call = b.call(tool_of(action, commands), {"command": action}, None, msg, content=thought)
        observation = text_of(step.get("observation"))
        b.result(call, observation, msg + 1, is_error=observation_error(observation))
        msg += 2
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    replay = doc.get("replay_config")
    if isinstance(replay, str):
        try:
            replay = json.loads(replay)
        except ValueError:
            replay = None
    replay = replay if isinstance(replay, dict) else {}
    model = _get(replay, "agent", "model", "name")
    task = _get(replay, "problem_statement", "id") or raw.path.name.removesuffix(".traj")
    meta = {k: info[k] for k in ("exit_status", "submission", "model_stats", "swe_agent_version")
            if info.get(k) is not None}  # fmt: skip
    if doc.get("environment"):
        meta["environment"] = doc["environment"]
    return Run(
        record="document",
        steps=b.steps,
        native_id=str(task),
        task_id=str(task),
        model=model or ctx.model,
        agent=AGENT,
        outcome=normalize_outcome(info.get("resolved")),
        reward=None,
        meta=meta,
    )


def documented_commands(history: list) -> frozenset[str]:
    """Commands the run's system prompt documents (SWE-agent 0.x lists them with docstrings)."""
    prompt = next((text_of(h.get("content")) for h in history if h.get("role") == "system"), None)
    return frozenset(_COMMAND_DOC.findall(prompt or ""))


def tool_of(action: str, commands: frozenset[str]) -> str:
    word = action.split(None, 1)[0]
    return word if word in commands else "bash"


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d
