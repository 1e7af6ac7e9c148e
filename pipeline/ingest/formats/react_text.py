"""ReAct plain-text logs: ``Question:`` then ``Thought i:`` / ``Action i: Tool[arg]`` /
``Observation i:`` lines (an observation may run over several lines).

Logs printed by Reflexion-style runners group runs in trials (``BEGIN TRIAL n`` with a
``Trial summary: Correct: a, Incorrect: b, Halted: c`` line) and sections (``BEGIN CORRECT /
INCORRECT / HALTED AGENTS``): the section is the run's outcome (halted counts as a failure). Such
logs reprint solved runs verbatim in every later trial: a reprint is not a new run and is counted
as a duplicate (a failed run repeated word for word in a later trial is a real new attempt). Each trial's summary is checked against the runs found; a mismatch is reported.
Without sections, the outcome comes from a final ``Answer is CORRECT / INCORRECT`` observation.

An ``Action`` line that is not ``Tool[arg]`` named no tool: it is kept as the assistant's text and
the observation answering it as a user message.

Reflections printed after the question are what the agent was shown (part of the user message);
``Correct answer:`` is the grader's and goes to ``meta.grader``. The task id is a digest of the
question text, so every attempt at one question shares it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.ids import digest
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Duplicate, Run, StepBuilder

NAME = "react-text"
AGENT = "react"

_TRIAL = re.compile(r"^BEGIN TRIAL (\d+)\s*$")
_SUMMARY = re.compile(r"^Trial summary: Correct: (\d+), Incorrect: (\d+), Halted: (\d+)")
_SECTION = re.compile(r"^-+ BEGIN (CORRECT|INCORRECT|HALTED) AGENTS -+\s*$")
_RULE = re.compile(r"^#{5,}\s*$")
_QUESTION = re.compile(r"^Question:")
_STEP = re.compile(r"^(Thought|Action|Observation) (\d+):[ ]?")
_ANSWER = re.compile(r"^Correct answer:[ ]?(.*)$")
_CALL = re.compile(r"^\s*(\w+)\[(.*)\]\s*$", re.S)
_RETRY = "You have attempted to answer following question before and failed."
_TOOL_ERROR = re.compile(
    r"^(Could not find|No Results|No more results|Invalid Action|The last page Searched was not found)"
)
_ARG_NAMES = {"Search": "entity", "Lookup": "keyword", "Finish": "answer"}
_OUTCOMES = {"CORRECT": "success", "INCORRECT": "failure", "HALTED": "failure"}


def sniff(sample, raw: RawFile) -> bool:
    if raw.looks_like_json or raw.is_parquet:
        return False
    head = raw.text[:200_000]
    return bool(
        re.search(r"^Question:", head, re.M)
        and re.search(r"^Thought 1:", head, re.M)
        and re.search(r"^Action 1:", head, re.M)
    )


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord | Duplicate]:
    lines = raw.text.split("\n")
    trial = None
    section = None
    summaries: dict[int, tuple[int, int, int, int]] = {}  # trial -> counts, line
    found: dict[tuple[int | None, str], int] = {}
    seen: dict[str, str] = {}  # solved run text -> where it was first printed
    n_in_section = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _TRIAL.match(line):
            trial, section = int(m.group(1)), None
        elif m := _SUMMARY.match(line):
            summaries[trial] = (*map(int, m.groups()), i + 1)
        elif m := _SECTION.match(line):
            section, n_in_section = m.group(1), 0
        elif _QUESTION.match(line):
            start = i
            i += 1
            while i < len(lines) and not _ends_run(lines[i]):
                i += 1
            n_in_section += 1
            block = lines[start:i]
            found[(trial, section)] = found.get((trial, section), 0) + 1
            where = _where(trial, section, n_in_section, start + 1)
            text = "\n".join(block).rstrip()
            # Only solved runs are reprinted; an identical failed run in a later trial is a real
            # new attempt (the agent failed the same way again) and is kept.
            if section == "CORRECT" and text in seen:
                yield Duplicate(where, f"reprint of the solved run at {seen[text]}")
                continue
            if section == "CORRECT":
                seen[text] = where
            offset = raw.line_offset(start) if raw.has_bad_utf8 else 0
            bad = raw.bad_utf8_in(offset, offset + len(text))
            if bad:
                yield BadRecord(where, bad)
                continue
            try:
                yield _run(block, where, trial, section, ctx)
            except ValueError as exc:
                yield BadRecord(where, str(exc))
            continue
        i += 1
    for t, (correct, incorrect, halted, line_no) in sorted(summaries.items()):
        got = tuple(found.get((t, s), 0) for s in ("CORRECT", "INCORRECT", "HALTED"))
        if got != (correct, incorrect, halted):
            yield BadRecord(
                f"trial {t} summary (line {line_no})",
                f"summary says {correct} correct, {incorrect} incorrect, {halted} halted; "
                f"the log holds {got[0]}, {got[1]}, {got[2]} runs",
            )


def _ends_run(line: str) -> bool:
    return bool(
        _QUESTION.match(line) or _SECTION.match(line) or _TRIAL.match(line) or _RULE.match(line)
    )


def _where(trial: int | None, section: str | None, n: int, line_no: int) -> str:
    parts = [f"trial {trial}"] if trial is not None else []
    if section:
        parts.append(section)
    parts.append(f"run {n} (line {line_no})")
    return ", ".join(parts)


def _run(block: list[str], where: str, trial, section, ctx) -> Run:
    prompt: list[str] = []
    items: list[list] = []  # [kind, number, text]
    answer = None
    for line in block:
        if m := _STEP.match(line):
            items.append([m.group(1), int(m.group(2)), line[m.end() :]])
        elif m := _ANSWER.match(line):
            answer = m.group(1)
        elif items:
            items[-1][2] += "\n" + line
        else:
            prompt.append(line)
    while prompt and not prompt[-1].strip():
        prompt.pop()
    user_text = "\n".join(prompt)
    first = user_text.removeprefix("Question:").strip()
    question = first.split(_RETRY, 1)[0].split("\nReflections:", 1)[0].strip()
    if not items:
        raise ValueError(
            "run without steps: no Thought/Action/Observation lines after the question"
        )

    b = StepBuilder()
    b.message("user", user_text, 0)
    thought = None
    last_obs = None
    free_text: set[int] = set()  # numbers of Action lines that named no tool
    msg = 0
    for kind, n, text in items:
        text = text.rstrip("\n")
        if kind == "Thought":
            if thought is not None:
                b.message("assistant", thought, msg)
            msg += 1
            thought = text
        elif kind == "Action":
            if thought is None:
                msg += 1
            call = _parse_action(text)
            if call is None:  # free text, not Tool[arg]: the environment ran no tool
                b.message("assistant", "\n".join(t for t in (thought, text.strip()) if t), msg)
                free_text.add(n)
            else:
                b.call(*call, f"action_{n}", msg, content=thought)
            thought = None
        else:
            msg += 1
            if n in free_text:  # the environment's reply to free text ("Invalid Action ...")
                b.message("user", text, msg)
            else:
                b.result(f"action_{n}", text, msg, is_error=bool(_TOOL_ERROR.match(text)))
            last_obs = text
    if thought is not None:
        b.message("assistant", thought, msg)

    if section:
        outcome = _OUTCOMES[section]
    elif last_obs and last_obs.startswith("Answer is CORRECT"):
        outcome = "success"
    elif last_obs and last_obs.startswith("Answer is INCORRECT"):
        outcome = "failure"
    else:
        outcome = None
    task_id = "q-" + digest("react-question", question, length=12)
    meta = {
        "trial": trial,
        "section": section,
        "halted": section == "HALTED",
        "question": question,
        "n_reflections": sum(1 for line in prompt if line.startswith("- ")),
    }
    if answer is not None:
        meta["grader"] = {"correct_answer": answer}
    return Run(
        record=where,
        steps=b.steps,
        native_id=f"trial-{trial}/{task_id}" if trial is not None else task_id,
        task_id=task_id,
        model=ctx.model,
        agent=AGENT,
        outcome=outcome,
        reward=None,
        meta=meta,
    )


def _parse_action(text: str) -> tuple[str, dict] | None:
    """``Tool[arg]`` as a tool and its arguments; None for anything else (the ReAct environment
    parses actions with the same pattern and answers any other text with "Invalid Action")."""
    m = _CALL.match(text)
    if not m:
        return None
    name, arg = m.group(1), m.group(2)
    return name, {_ARG_NAMES.get(name, "argument"): arg}
