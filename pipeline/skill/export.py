"""`export()`: a consolidation's skill folder, read from the lake, linted and put at OUT.

A consolidation writes tables only, the folder's files among them (`skill_files`, under the id
its `consolidations` row names as `skill_files_id`). Export reads those files back, stages them
beside OUT, lints them and then, holding OUT's writer lock: publishes them as the next version
(`pipeline.skill.versions`), or writes them as a proposal against the version in use
(`pipeline.skill.proposals`), or, when lint fails, leaves them in `OUT.rejected/` for inspection
and fails naming the problems (the skill in use is not touched). Any consolidation run the lake
holds can be exported again, to OUT or elsewhere.

Reads `consolidations` and `skill_files`; writes OUT (or its proposal or rejected folder) and
what publishing and proposing record.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import sql
from pipeline.console import Console
from pipeline.errors import UserError
from pipeline.lake import Lake
from pipeline.skill.assemble import as_bytes
from pipeline.skill.folder import stage_files, swap_into_place
from pipeline.skill.lint import LintProblem, lint_skill, review_skill
from pipeline.skill.proposals import RESURFACE, ProposalSummary, propose
from pipeline.skill.publish import recover, writer_lock
from pipeline.skill.versions import publish_version, version_bytes


class ExportError(UserError, RuntimeError):
    """A consolidation's folder cannot be exported: unknown run, no files, or it fails lint."""


@dataclass
class Exported:
    out_dir: Path  # where the folder went: OUT, the proposal's folder, or OUT.rejected
    version_id: str | None = None
    proposal: ProposalSummary | None = None
    lint: list[LintProblem] = field(default_factory=list)


def run_row(lake: Lake, run_id: str) -> dict:
    with sql.connect(lake) as con:
        found = sql.query(con, "consolidation_run", run_id=run_id)
    if found.height == 0:
        raise ExportError(f"no consolidation run {run_id!r} in {lake.uri}")
    row = found.row(0, named=True)
    if row["skill_files_id"] is None:
        raise ExportError(
            f"consolidation run {run_id} kept no skill files in {lake.uri} (it predates them): "
            "consolidate again"
        )
    return row


def lint_files(
    files: dict[str, bytes], out: Path, name: str, console: Console
) -> list[LintProblem]:
    """Lint problems of the files as a skill folder named `name` (staged beside OUT, removed)."""
    staged = stage_files(as_bytes(files), out)
    try:
        for warning in review_skill(staged):  # worded like a prompt injection: for a person
            console.warn(f"review {warning}")
        return lint_skill(staged, folder_name=name)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def export(
    lake: Lake,
    run_id: str,
    out: Path | None = None,
    *,
    propose_change: bool = False,
    since: dt.datetime | None = None,
    resurface: float = RESURFACE,
    console: Console,
    locked: bool = False,
) -> Exported:
    """Put consolidation `run_id`'s folder at OUT (default: where it was consolidated to), or
    propose it there; `locked` when the caller holds OUT's writer lock already."""
    row = run_row(lake, run_id)
    settings = json.loads(row["settings"])
    out = Path(out) if out is not None else Path(row["out_dir"]).with_name(settings["name"])
    name = out.name
    base = Path(row["base_skill"]) if row["base_skill"] else None
    with sql.connect(lake) as con:
        files = version_bytes(con, row["skill_files_id"])
    with nullcontext() if locked else writer_lock(out):
        if not locked:
            for done in recover(out):
                console.warn(done)
        staged = stage_files(files, out)
        problems = lint_skill(staged, folder_name=name)
        if problems:
            rejected = out.with_name(f"{out.name}.rejected")
            shutil.rmtree(rejected, ignore_errors=True)
            swap_into_place(staged, rejected)
            listed = "\n".join(f"  {p}" for p in problems[:50])
            raise ExportError(
                f"the written skill failed lint ({len(problems)} problem(s)); it was left in "
                f"{rejected} for inspection:\n{listed}"
            )
        if propose_change:
            proposal = propose(
                lake, staged, out, run_id, name, console, since=since, resurface=resurface,
                base_skill=base if base is not None and base.is_dir() else None,
            )  # fmt: skip
            return Exported(proposal.skill_dir if proposal else out, proposal=proposal)
        return Exported(out, version_id=publish_version(lake, staged, out, run_id, name, console))
