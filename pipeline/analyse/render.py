"""Render one trajectory as compact, faithful text for a model, within a token budget.

Reads a `trajectories` row and that run's `steps`; writes nothing. The text has three parts:

- a header (source, task, agent, model, outcome, reward, step count);
- the run, one line per step with its ``step_idx`` kept (``[12] tool_call get_user(id="u1")``,
  ``[13] tool_result get_user: {...}``), so a model can cite evidence steps;
- the grader's view (gold actions, reward breakdown, hidden goal, correct answer) from
  ``meta.grader``, in its own section marked as hidden from the agent.

Fitting the budget (tokens estimated as characters / 4): long texts are cut in the middle with a
marker (``[... 1234 chars cut ...]``) at the largest common cap that fits; if even short texts do
not fit, whole blocks of steps are left out from the middle (a tool call and its result always
form one block, never split), keeping the opening, the ending and the steps that report errors.
Every text passes through `redact` first, so no secret reaches a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from pipeline.analyse.redact import redact

DEFAULT_BUDGET_TOKENS = 8000
MIN_CAP = 240  # characters of one step's text below which we drop steps instead
CHARS_PER_TOKEN = 4.0
GRADER_SHARE = 0.25  # at most this share of the budget goes to the grader's view


def estimate_tokens(text: str, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """Token estimate used for budgets: about four characters per token for English and JSON."""
    return int(len(text) / chars_per_token + 0.999)


def cut_middle(text: str, max_chars: int) -> str:
    """`text` itself if short enough, else its head and tail around a marker naming the cut."""
    if len(text) <= max_chars:
        return text
    keep = max(max_chars - 32, 16)
    head = keep * 2 // 3
    tail = keep - head
    cut = len(text) - head - tail
    return f"{text[:head]} [... {cut} chars cut ...] {text[len(text) - tail :]}"


def format_args(tool_args: str | None) -> str:
    """Call arguments as ``key=value`` pairs (values in JSON), or the raw text if not an object."""
    if tool_args is None or tool_args == "":
        return ""
    try:
        value = json.loads(tool_args)
    except (TypeError, ValueError):
        return tool_args
    if isinstance(value, dict):
        return ", ".join(
            f"{k}={json.dumps(v, ensure_ascii=False, separators=(',', ':'))}"
            for k, v in value.items()
        )
    return json.dumps(value, ensure_ascii=False)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if len(text) < 400 else text.strip()


def step_parts(step: Mapping[str, Any]) -> tuple[str, str]:
    """(prefix, body) of one step's line; only the body is ever cut."""
    idx, kind = step["step_idx"], step["kind"]
    content = redact(step.get("content") or "") or ""
    if kind == "tool_call":
        # Text sent with the call (a ReAct thought, a chat message) comes first, as the agent
        # wrote it; the call line keeps the "[n] tool_call name(args)" form.
        args = redact(format_args(step.get("tool_args"))) or ""
        said = f"assistant: {_one_line(content)}\n    " if content.strip() else ""
        return f"[{idx}] {said}tool_call {step.get('tool_name') or '?'}(", f"{args})"
    if kind == "tool_result":
        flag = " ERROR" if step.get("is_error") else ""
        return f"[{idx}] tool_result {step.get('tool_name') or '?'}{flag}: ", content.strip()
    return f"[{idx}] {step.get('role')}: ", content.strip()


def blocks_of(steps: list[Mapping[str, Any]]) -> list[list[int]]:
    """Positions of `steps` grouped so that every call sits in one block with its result."""
    result_pos: dict[int, int] = {}
    by_idx = {s["step_idx"]: i for i, s in enumerate(steps)}
    for i, s in enumerate(steps):
        call = s.get("call_step_idx")
        if s["kind"] == "tool_result" and call is not None and call in by_idx:
            result_pos[by_idx[call]] = max(result_pos.get(by_idx[call], i), i)
    blocks: list[list[int]] = []
    end = -1
    for i in range(len(steps)):
        if i > end:
            blocks.append([])
        blocks[-1].append(i)
        end = max(end, result_pos.get(i, i))
    return blocks


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def _as_call(value: Any) -> str | None:
    """``name(k=v, ...)`` for an action-shaped dict ({name, kwargs|arguments}), else None."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    args = value.get("kwargs", value.get("arguments"))
    if not isinstance(args, dict) or set(value) - {"name", "kwargs", "arguments"}:
        return None
    return f"{value['name']}({format_args(json.dumps(args))})"


def _grader_lines(value: Any, indent: str = "") -> list[str]:
    """Grader data as short lines: one per key (nested objects indented), lists of actions as
    one call per line, every other value as compact JSON."""
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines += [f"{indent}{key}:", *_grader_lines(item, indent + "  ")]
            elif isinstance(item, list) and item and all(_as_call(v) for v in item):
                lines += [f"{indent}{key}:", *(f"{indent}  - {_as_call(v)}" for v in item)]
            else:
                lines.append(f"{indent}{key}: {_compact(item)}")
        return lines
    return [indent + _compact(value)]


def _grader_text(meta: str | None) -> str | None:
    try:
        grader = json.loads(meta or "{}").get("grader")
    except (TypeError, ValueError, AttributeError):
        return None
    if not grader:
        return None
    return redact("\n".join(_grader_lines(grader)))


def _fit(parts: list[tuple[str, str]], budget: int) -> tuple[int | None, bool]:
    """The largest body cap (None: no cut) whose lines fit `budget` characters; False if none."""
    sizes = [len(p) + len(b) + 1 for p, b in parts]
    if sum(sizes) <= budget:
        return None, True
    bodies = sorted(len(b) for _, b in parts)
    lo, hi = MIN_CAP, max(bodies[-1], MIN_CAP)

    def total(cap: int) -> int:
        return sum(len(p) + min(len(b), cap + 40) + 1 for p, b in parts)

    if total(lo) > budget:
        return lo, False
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if total(mid) <= budget else (lo, mid - 1)
    return lo, True


def render_trajectory(
    traj_row: Mapping[str, Any] | pl.DataFrame,
    steps_df: pl.DataFrame,
    *,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    chars_per_token: float = CHARS_PER_TOKEN,
) -> str:
    """The run as text of about `budget_tokens` tokens at most (see the module docstring)."""
    if isinstance(traj_row, pl.DataFrame):
        traj_row = traj_row.row(0, named=True)
    steps = steps_df.sort("step_idx").to_dicts()
    budget = int(budget_tokens * chars_per_token)
    reward = traj_row.get("reward")
    header = (
        f"Trajectory {traj_row.get('trajectory_id')} | source {traj_row.get('source')} | "
        f"task {traj_row.get('task_id') or '-'} | agent {traj_row.get('agent') or '-'} | "
        f"model {traj_row.get('model') or '-'}\n"
        f"Outcome: {traj_row.get('outcome')}"
        + (f" (reward {reward:g})" if reward is not None else "")
        + f" | {len(steps)} steps\n\n== Run: what the agent saw and did ==\n"
    )
    header = redact(header)  # ids and names come from the source too
    grader = _grader_text(traj_row.get("meta"))
    footer = ""
    if grader:
        title = (
            "\n== Grader view: HIDDEN FROM THE AGENT (ground truth for judging the run; "
            "the agent never saw it) ==\n"
        )
        grader_budget = max(int(budget * GRADER_SHARE) - len(title), MIN_CAP)
        footer = title + cut_middle(grader, grader_budget) + "\n"
    room = max(budget - len(header) - len(footer), MIN_CAP * 4)

    parts = [step_parts(s) for s in steps]
    cap, fits = _fit(parts, room)
    keep = set(range(len(steps)))
    if not fits:
        keep = _choose_blocks(steps, parts, cap, room)
    lines: list[str] = []
    skipped: list[int] = []
    for i, (prefix, body) in enumerate(parts):
        if i not in keep:
            skipped.append(i)
            continue
        if skipped:
            lines.append(_omitted(steps, skipped))
            skipped = []
        lines.append(prefix + (cut_middle(body, cap + 40) if cap is not None else body))
    if skipped:
        lines.append(_omitted(steps, skipped))
    return header + "\n".join(lines) + "\n" + footer


def _omitted(steps: list[Mapping[str, Any]], positions: list[int]) -> str:
    first, last = steps[positions[0]]["step_idx"], steps[positions[-1]]["step_idx"]
    calls = sum(1 for p in positions if steps[p]["kind"] == "tool_call")
    errors = sum(1 for p in positions if steps[p].get("is_error"))
    return (
        f"[... steps {first}-{last} omitted to fit the budget: {len(positions)} steps, "
        f"{calls} tool calls, {errors} errors ...]"
    )


def _choose_blocks(
    steps: list[Mapping[str, Any]], parts: list[tuple[str, str]], cap: int, room: int
) -> set[int]:
    """Positions to keep: opening and ending blocks first, then error blocks, then alternately
    from both ends, while the capped lines fit `room` (less space for omission markers)."""
    blocks = blocks_of(steps)
    size = [sum(len(parts[i][0]) + min(len(parts[i][1]), cap + 40) + 1 for i in b) for b in blocks]
    n = len(blocks)
    order = [0, 1, n - 1, n - 2, n - 3]
    order += [j for j, b in enumerate(blocks) if any(steps[i].get("is_error") for i in b)]
    for k in range(n):
        order += [k, n - 1 - k]
    chosen: set[int] = set()
    used = 0
    for j in order:
        if j < 0 or j >= n or j in chosen:
            continue
        marker_room = 120 * (len(chosen) + 1)
        if used + size[j] + marker_room > room:
            continue
        chosen.add(j)
        used += size[j]
    return {i for j in chosen for i in blocks[j]}
