"""An example input format: "shout logs", plain text that a toy agent prints, one run per block.

    RUN r1 task=find-todo outcome=success
    USER find the TODO
    CALL grep TODO src/
    RESULT src/a.py:3: # TODO
    SAY It is in src/a.py.
    END

A third-party format is one module like this one (``NAME``, ``sniff``, ``read``, and optionally
``SUFFIXES``) and an entry point in its package's metadata:

    [project.entry-points."trace2skill.formats"]
    shout-log = "shout_log"
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run, StepBuilder

NAME = "shout-log"  # what --format takes; must be the entry point's name
SUFFIXES = (".shout",)  # a folder walk reads these files too


def sniff(sample: list, raw: RawFile) -> bool:
    """Content decides: a shout log starts with a RUN line (sample is [] for a non-JSON file)."""
    return not raw.looks_like_json and not raw.is_parquet and raw.text.startswith("RUN ")


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    run: Run | None = None
    steps = StepBuilder()
    for number, line in enumerate(raw.text.splitlines(), start=1):
        word, _, rest = line.partition(" ")
        if word == "RUN":
            native_id, *fields = rest.split()
            facts = dict(f.split("=", 1) for f in fields)
            run = Run(
                record=f"line {number}",
                steps=[],
                native_id=native_id,
                task_id=facts.get("task"),
                outcome=facts.get("outcome"),
                agent="shouter",
                model=ctx.model,
            )
            steps = StepBuilder()
        elif run is None:
            yield BadRecord(f"line {number}", f"{word or 'a blank line'} before any RUN line")
        elif word == "USER":
            steps.message("user", rest, len(steps))
        elif word == "CALL":
            tool, _, argument = rest.partition(" ")
            steps.call(tool, {"argument": argument}, None, len(steps))
        elif word == "RESULT":
            steps.result(None, rest, len(steps))
        elif word == "SAY":
            steps.message("assistant", rest, len(steps))
        elif word == "END":
            run.steps = steps.steps
            yield run
            run = None
        else:
            yield BadRecord(f"line {number}", f"unknown line kind {word!r}")
