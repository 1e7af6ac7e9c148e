"""`review()`: a proposal's edits accepted or rejected, and what was accepted published.

Verdicts come from the reviewer (`review.md` marked, another decisions file, a terminal, or
accept-all); held edits stay rejected by the decision that holds them. The next version is the
candidate with every edit not accepted taken back (`pipeline.skill.assemble`), so it differs from
the version in use by exactly the accepted edits. It is written like a consolidation's folder:
its `skill_lines` (each line keeps the evidence of the run that wrote it) under a review run id
that SKILL.md names, then published at OUT and recorded as a version (`pipeline.skill.versions`),
then the decisions. The gate: the latest `eval` that played the proposed folder (or the folder
accepted) as its candidate decides; a refusal stops the review unless forced.

Reads `proposals`, `proposal_edits`, `skill_files`, `skill_lines`, `skill_versions`, `eval_arms`,
`eval_runs`; writes `skill_lines`, `skill_versions`, `skill_files`, `decisions`, and OUT.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.errors import UserError
from pipeline.ids import digest
from pipeline.lake import Lake
from pipeline.skill import review_file
from pipeline.skill.assemble import as_bytes, as_files, assemble
from pipeline.skill.folder import SKILL_FILE, stage_files
from pipeline.skill.lint import lint_skill
from pipeline.skill.proposals import against, edits_of
from pipeline.skill.publish import recover, writer_lock
from pipeline.skill.versions import (
    actor,
    folder_files,
    live_files,
    publish_version,
    record_files,
    record_live,
    recorded,
    run_lines,
    version_bytes,
    version_id,
)

_RUN_LINE = re.compile(r"^(\s*consolidation-run:\s*)(\S+)\s*$", re.MULTILINE)
Ask = Callable[[dict], tuple[str | None, str | None]]  # an edit -> (verdict, reason)


class ReviewError(UserError, ValueError):
    """A review cannot go ahead: undecided edits, a stale proposal, a failed check."""


class GateRefused(ReviewError):
    """The evaluation gate refused the proposal."""


@dataclass
class Gate:
    eval_id: str | None = None
    verdict: str | None = None  # promote / refuse / None: not evaluated
    reason: str | None = None
    played: str | None = None  # "proposed" or "accepted": which folder the eval played

    def text(self) -> str:
        if self.eval_id is None:
            return "not evaluated (trace2skill eval --skill <proposal> --incumbent <live>)"
        return (
            f"eval {self.eval_id[:12]} of the {self.played} folder: {self.verdict} ({self.reason})"
        )


@dataclass
class ReviewSummary:
    proposal_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    version_id: str | None = None
    gate: Gate = field(default_factory=Gate)


def verdicts(
    edits: pl.DataFrame,
    *,
    accept_all: bool,
    marked: dict[str, tuple[str | None, str | None]],
    ask: Ask | None,
) -> dict[str, tuple[str, str | None]]:
    """A verdict for every open edit, or ReviewError naming those without one."""
    decided: dict[str, tuple[str, str | None]] = {}
    undecided = []
    for e in edits.filter(pl.col("held_by").is_null()).iter_rows(named=True):
        verdict, reason = ("accept", None) if accept_all else marked.get(e["edit_id"], (None, None))
        if verdict is None and ask is not None:
            verdict, reason = ask(e)
        if verdict is None:
            undecided.append(e["edit_id"])
        else:
            decided[e["edit_id"]] = (verdict, reason)
    if undecided:
        shown = ", ".join(undecided[:10]) + (" ..." if len(undecided) > 10 else "")
        raise ReviewError(
            f"{len(undecided)} edit(s) have no verdict ({shown}): mark them in the review file, "
            "or pass --accept-all"
        )
    return decided


def gate(lake: Lake, folders: dict[str, Path]) -> Gate:
    """The latest evaluation whose candidate was one of `folders` ({label: folder})."""
    from pipeline.evaluate.skill import Skill

    digests = {Skill.load(path).digest: label for label, path in folders.items()}
    with sql.connect(lake) as con:
        found = sql.query(con, "review_gate", digests=list(digests))
    if found.height == 0:
        return Gate()
    row = found.row(0, named=True)
    return Gate(row["eval_id"], row["verdict"], row["verdict_reason"], digests[row["skill_digest"]])


def _with_run(files: dict[str, str], run_id: str) -> dict[str, str]:
    """SKILL.md naming `run_id` as the run whose skill_lines hold its provenance."""
    skill = files.get(SKILL_FILE, "")
    return files | {SKILL_FILE: _RUN_LINE.sub(lambda m: m.group(1) + run_id, skill, count=1)}


def review(
    lake: Lake,
    proposal: dict,
    *,
    accept_all: bool = False,
    marked: dict[str, tuple[str | None, str | None]] | None = None,
    ask: Ask | None = None,
    force: bool = False,
    require_eval: bool = False,
    console: Console,
) -> ReviewSummary:
    """Decide the proposal's edits and publish the accepted ones at its OUT (see the module
    docstring); GateRefused when the gate refuses and `force` is not given."""
    pid = proposal["proposal_id"]
    out, name = Path(proposal["out"]), proposal["skill_name"]
    with sql.connect(lake) as con:
        edits = sql.query(con, "proposal_edits_of", proposal_id=pid)
        done = sql.query(con, "proposals_list").filter(pl.col("proposal_id") == pid)
    if done.height and done["version_id"][0] is not None:
        raise ReviewError(
            f"proposal {pid[:12]} was reviewed already (version {done['version_id'][0][:8]}): "
            "make a new one with distill --propose"
        )
    decided = verdicts(edits, accept_all=accept_all, marked=marked or {}, ask=ask)
    summary = ReviewSummary(pid)
    summary.accepted = [k for k, (v, _) in decided.items() if v == "accept"]
    summary.rejected = [k for k, (v, _) in decided.items() if v == "reject"]
    summary.held = edits.filter(pl.col("held_by").is_not_null())["edit_id"].to_list()

    with writer_lock(out):
        for note in recover(out):
            console.warn(note)
        live = record_live(lake, out, name, console)
        if live != proposal["base_version_id"]:
            raise ReviewError(
                f"{out} shows version {(live or 'none')[:8]}, not {(proposal['base_version_id'] or 'none')[:8]} "
                "the proposal was made against: make a new proposal (distill --propose)"
            )
        versions = {r["version_id"]: r for r in recorded(lake).iter_rows(named=True)}
        with sql.connect(lake) as con:
            a_files, _, a_lines = against(con, versions.get(live), proposal["against_files_id"])
            c_files = as_files(version_bytes(con, proposal["candidate_version_id"]))
            c_lines = run_lines(con, proposal["run_id"])
        revert = set(edits["edit_id"]) - set(summary.accepted)
        built = assemble(a_files, a_lines, c_files, c_lines, edits_of(edits), revert)
        review_id = digest("review", pid, sorted(decided.items()))
        staged = stage_files(as_bytes(_with_run(built.files, review_id)), out)
        try:
            problems = lint_skill(staged, folder_name=name)
            if problems:
                listed = "\n".join(f"  {p}" for p in problems[:20])
                raise ReviewError(f"the reviewed skill fails lint:\n{listed}")
            summary.gate = gate(lake, {"proposed": Path(proposal["path"]) / name,
                                       "accepted": staged})  # fmt: skip
            if summary.gate.verdict == "refuse" and not force:
                raise GateRefused(f"the gate refuses proposal {pid[:12]}: {summary.gate.text()}")
            if summary.gate.verdict is None and require_eval and not force:
                raise GateRefused(f"proposal {pid[:12]} has not been evaluated (--require-eval)")
            _write_run(lake, proposal, review_id, built.lines, c_lines, edits, decided, staged)
            summary.version_id = publish_version(lake, staged, out, review_id, name, console)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    if summary.version_id is None:  # published, not recorded: the decisions have no version
        summary.version_id = version_id(live_files(out) or {})
    now, who = dt.datetime.now(dt.UTC), actor()
    rows = [
        {
            "decision_id": digest("decision", pid, e["edit_id"]),
            "proposal_id": pid,
            "edit_id": e["edit_id"],
            "kind": e["kind"],
            "section": e["section"],
            "text": e["text"],
            "old_text": e["old_text"],
            "lesson_ids": e["lesson_ids"],
            "n_trajectories": e["n_trajectories"],
            "verdict": decided[e["edit_id"]][0],
            "reason": decided[e["edit_id"]][1],
            "decided_by": who,
            "decided_at": now,
            "version_id": summary.version_id,
        }
        for e in edits.iter_rows(named=True)
        if e["edit_id"] in decided
    ]
    if rows:
        lake.replace_partition("decisions", pl.DataFrame(rows), {"proposal_id": pid})
    return summary


# A review run's rows: the consolidation's, under the review's id, so coverage, lineage and the
# latest_* views read a reviewed skill as any other.
COPIED = ("clusters", "cluster_members", "merge_nodes", "merge_edges", "patch_ops",
          "consolidation_scope")  # fmt: skip


def _write_run(
    lake: Lake,
    proposal: dict,
    review_id: str,
    lines: pl.DataFrame,
    c_lines: pl.DataFrame,
    edits: pl.DataFrame,
    decided: dict[str, tuple[str, str | None]],
    staged: Path,
) -> None:
    """The review as a run: the consolidation's tables under `review_id`, its skill lines, the
    lessons of statements not accepted as dropped at stage `review`, then its consolidations
    row (last: the row says the run is complete)."""
    run = proposal["run_id"]

    def of_run(table: str) -> pl.DataFrame:
        rows = lake.scan(table).filter(pl.col("run_id") == run).collect()
        return rows.with_columns(run_id=pl.lit(review_id))

    for table in COPIED:
        lake.replace_partition(table, of_run(table), {"run_id": review_id})
    kept = set(lines["lesson_ids"].explode().drop_nulls().to_list())
    drops = []
    for e in edits.filter(pl.col("new_key").is_not_null()).iter_rows(named=True):
        verdict, reason = decided.get(e["edit_id"], (None, None))
        if verdict == "accept":
            continue
        why = f"held back: {e['note']}"
        if verdict:
            why = "rejected in review" + (f": {reason}" if reason else "")
        statement = c_lines.filter(pl.col("statement_key") == e["new_key"])
        for lesson in sorted(set(statement["lesson_ids"].explode().drop_nulls()) - kept):
            drops.append({"run_id": review_id, "lesson_id": lesson, "cluster_id": None,
                          "stage": "review", "reason": why, "node_id": None})  # fmt: skip
    earlier = of_run("dropped")
    dropped = pl.concat([earlier, pl.DataFrame(drops, schema=earlier.schema)])
    lake.replace_partition("dropped", dropped, {"run_id": review_id})
    skill_lines = lines.drop("statement_key").with_columns(run_id=pl.lit(review_id))
    lake.replace_partition("skill_lines", skill_lines, {"run_id": review_id})
    row = of_run("consolidations").row(0, named=True)
    settings = json.loads(row["settings"]) | {"review": {"proposal_id": proposal["proposal_id"],
                                                         "consolidation": run}}  # fmt: skip
    row |= {
        "settings": json.dumps(settings, sort_keys=True),
        "out_dir": proposal["out"],
        "n_skill_lines": skill_lines.filter(pl.col("origin").is_in(["added", "revised"])).height,
        "n_dropped": row["n_dropped"] + len({d["lesson_id"] for d in drops}),
        "lint_ok": True,
        "created_at": dt.datetime.now(dt.UTC),
        "skill_files_id": record_files(lake, folder_files(staged)),
    }
    lake.replace_partition("consolidations", pl.DataFrame([row]), {"run_id": review_id})


def marked_in(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """Verdicts read from a review file; ReviewError naming the file when one is unreadable."""
    try:
        return review_file.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReviewError(f"cannot read {path}: {exc}") from None
    except review_file.ReviewFileError as exc:
        raise ReviewError(f"{path}: {exc}") from None
