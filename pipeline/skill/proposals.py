"""Proposals: a consolidation's skill set against the version in use, for a person to review.

`propose` takes the folder a consolidation staged (the candidate) and, instead of publishing it,
reads it against the version live at OUT statement by statement (`pipeline.skill.diff`): each
added, changed or removed statement is an edit, with its evidence and, after `--since`, how many
of its runs are new. An edit the reviewers rejected before at this folder is held back until its
runs have grown `resurface` times (a removal they rejected stays held), and the proposal says so.
The proposed folder is the candidate without the held edits (`pipeline.skill.assemble`).

Reads `skill_versions`, `skill_files`, `skill_lines`, `lessons`, `trajectories`, `decisions` and
`proposals`; writes `proposals` and `proposal_edits` (partitioned by proposal id), the candidate's
and the proposed folder's files to `skill_files`, and the proposal folder `OUT.proposals/<id>/`:
the proposed skill (named after it, so `eval` and `lint` read it as any skill), `changes.diff`
(a unified diff against the live version), `review.md`, the file a reviewer marks, and
`review.html`, the edits with the evidence beside each.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.ids import digest
from pipeline.lake import Lake
from pipeline.skill import review_file
from pipeline.skill.assemble import Edit, as_bytes, as_files, assemble
from pipeline.skill.diff import (
    MIN_JACCARD,
    StatementDiff,
    diff_statements,
    file_diff,
    file_statements,
    normalise,
)
from pipeline.skill.folder import write_files
from pipeline.skill.lint import lint_skill
from pipeline.skill.versions import (
    actor,
    folder_files,
    lines_alone,
    record_files,
    record_live,
    recorded,
    run_lines,
    run_statements,
    version_files,
    version_lines,
    version_statements,
)

RESURFACE = 2.0  # a rejected statement is proposed again once its runs reach this multiple
ID_SHOWN = 12


class ProposalError(ValueError):
    """A proposal cannot be found or made as asked."""


@dataclass
class ProposalSummary:
    proposal_id: str
    path: Path  # the proposal folder
    skill_dir: Path  # the proposed skill inside it
    base_version_id: str | None
    counts: dict[str, int]  # added / changed / removed proposed
    n_held: int
    n_new_runs: int
    lint: list


def proposals_dir(out: Path) -> Path:
    return out.with_name(f"{out.name}.proposals")


def edit_rows(d: StatementDiff) -> pl.DataFrame:
    """One row per edit of the diff, e1, e2, ... in section, file and line order."""
    rows = []
    for entries in d.by_section().values():
        for kind, e in entries:
            new = e["new"] if kind == "changed" else (e if kind == "added" else None)
            old = e["old"] if kind == "changed" else (e if kind == "removed" else None)
            shown = new or old
            rows.append(
                {
                    "edit_id": f"e{len(rows) + 1}",
                    "kind": kind,
                    "section": shown["section"],
                    "file": shown["file"],
                    "text": shown["text"].strip(),
                    "old_text": old["text"].strip() if kind == "changed" else None,
                    "old_key": old["statement_key"] if old else None,
                    "new_key": new["statement_key"] if new else None,
                    "lesson_ids": list(shown["lesson_ids"] or []),
                    "n_trajectories": shown["n_trajectories"],
                    "n_tasks": shown["n_tasks"],
                    "n_failures": shown["n_failures"],
                    "n_successes": shown["n_successes"],
                    "old_n_trajectories": old["n_trajectories"] if old else None,
                }
            )
    schema = {
        "edit_id": pl.String, "kind": pl.String, "section": pl.String, "file": pl.String,
        "text": pl.String, "old_text": pl.String, "old_key": pl.String, "new_key": pl.String,
        "lesson_ids": pl.List(pl.String), "n_trajectories": pl.Int64, "n_tasks": pl.Int64,
        "n_failures": pl.Int64, "n_successes": pl.Int64, "old_n_trajectories": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def _new_runs(con: duckdb.DuckDBPyConnection, edits: pl.DataFrame, since: dt.datetime | None):
    if since is None or edits.height == 0:
        return edits.with_columns(n_new_runs=pl.lit(0, pl.Int64))
    con.register("edit_lessons", edits.select("edit_id", "lesson_ids"))
    try:
        counts = sql.query(con, "proposal_new_runs", since=since)
    finally:
        con.unregister("edit_lessons")
    return edits.join(counts, on="edit_id", how="left").with_columns(
        pl.col("n_new_runs").fill_null(0).cast(pl.Int64)
    )


def _past_decisions(con: duckdb.DuckDBPyConnection, out: Path) -> pl.DataFrame:
    """Decisions taken on proposals for this folder, with their text normalised."""
    past = sql.query(con, "proposal_decisions_at", out=str(out), out_resolved=str(out.resolve()))
    return past.with_columns(norm=pl.col("text").map_elements(normalise, return_dtype=pl.String))


def _holds(
    con: duckdb.DuckDBPyConnection, edits: pl.DataFrame, past: pl.DataFrame, resurface: float
) -> pl.DataFrame:
    """`held_by` (the rejection that holds an edit back) and `note` for each edit."""
    plain = edits.with_columns(held_by=pl.lit(None, pl.String), note=pl.lit(None, pl.String))
    if past.height == 0 or edits.height == 0:
        return plain
    con.register(
        "new_edits",
        edits.select(
            "edit_id", "kind", "lesson_ids",
            norm=pl.col("text").map_elements(normalise, return_dtype=pl.String),
        ),
    )  # fmt: skip
    con.register("past_decisions", past)
    try:
        matched = sql.query(con, "proposal_past_decisions", min_jaccard=MIN_JACCARD)
    finally:
        con.unregister("new_edits")
        con.unregister("past_decisions")
    rows = {r["edit_id"]: r for r in matched.iter_rows(named=True)}
    held, notes = [], []
    for e in edits.iter_rows(named=True):
        m = rows.get(e["edit_id"])
        if m is None or m["verdict"] != "reject":
            held.append(None)
            notes.append(None)
            continue
        when = f"{m['decided_at']:%Y-%m-%d} by {m['decided_by']}"
        why = f" ({m['reason']})" if m["reason"] else ""
        need = int(-(-max(m["n_trajectories"], 1) * resurface // 1))  # ceiling, at least 1 run
        if e["kind"] == "removed":
            held.append(m["decision_id"])
            notes.append(f"its removal was rejected {when}{why}: kept")
        elif e["n_trajectories"] < need:
            held.append(m["decision_id"])
            notes.append(
                f"rejected {when} at {m['n_trajectories']} runs{why}; now {e['n_trajectories']}, "
                f"proposed again at {need}"
            )
        else:
            held.append(None)
            notes.append(
                f"rejected {when} at {m['n_trajectories']} runs{why}; proposed again: "
                f"now {e['n_trajectories']} runs"
            )
    return plain.with_columns(
        held_by=pl.Series(held, dtype=pl.String), note=pl.Series(notes, dtype=pl.String)
    )


def _page(
    d: StatementDiff, edits: pl.DataFrame, base: dict | None, row: dict, changes: str, uri: str
) -> str:
    """The proposal as a page: its open edits with their evidence, then the files' diff."""
    from pipeline.skill.diff_html import render

    held = edits.filter(pl.col("held_by").is_not_null())
    keys = set(held["old_key"].drop_nulls()) | set(held["new_key"].drop_nulls())
    shown = StatementDiff(
        added=[s for s in d.added if s["statement_key"] not in keys],
        removed=[s for s in d.removed if s["statement_key"] not in keys],
        changed=[c for c in d.changed if c["new"]["statement_key"] not in keys],
        n_unchanged=d.n_unchanged,
    )
    proposed = {
        "version_id": row["proposed_version_id"],
        "run_id": row["run_id"],
        "created_at": row["created_at"],
        "created_by": f"proposal {row['proposal_id'][:12]} by {row['created_by']}",
        "n_statements": None,
    }
    return render(shown, base or {"version_id": "none"}, proposed, files=changes, lake_uri=uri)


def against(
    con: duckdb.DuckDBPyConnection, base: dict | None, files_id: str | None
) -> tuple[dict[str, str], pl.DataFrame, pl.DataFrame]:
    """What a proposal's edits are read against (files, statements, lines): the version live
    when it was made; with none, the base skill's files (`files_id` in skill_files), each line
    a statement of its own, so a first proposal shows what the lessons add; else nothing."""
    if base is not None:
        return (
            version_files(con, base["version_id"]),
            version_statements(con, base),
            version_lines(con, base),
        )
    if files_id is not None:
        files = version_files(con, files_id)
        return files, file_statements(files), lines_alone(files)
    return {}, run_statements(con, None), run_lines(con, None)


def edits_of(edits: pl.DataFrame) -> list[Edit]:
    return [
        Edit(r["edit_id"], r["kind"], r["old_key"], r["new_key"])
        for r in edits.iter_rows(named=True)
    ]


def write_folder(files: dict[str, str] | dict[str, bytes], target: Path) -> None:
    """Write the files as the folder `target`, whole: staged beside it, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    write_files(as_bytes(files), tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def propose(
    lake: Lake,
    staged: Path,
    out: Path,
    run_id: str,
    skill_name: str,
    console: Console,
    *,
    since: dt.datetime | None = None,
    resurface: float = RESURFACE,
    base_skill: Path | None = None,
) -> ProposalSummary | None:
    """Write the staged candidate as a proposal against the version live at OUT (call it
    holding `writer_lock(out)`); the staged folder is consumed, OUT is not touched. None when
    there is nothing to propose (no edit, or only edits held back)."""
    candidate = folder_files(staged)
    shutil.rmtree(staged, ignore_errors=True)
    base_id = record_live(lake, out, skill_name, console)
    versions = {r["version_id"]: r for r in recorded(lake).iter_rows(named=True)}
    base = versions.get(base_id)
    against_id = base_id if base else None
    if base is None and base_skill is not None:  # nothing live: the edits are the lessons'
        against_id = record_files(lake, folder_files(Path(base_skill)))
    with sql.connect(lake) as con:
        a_files, a_statements, a_lines = against(con, base, against_id)
        d = diff_statements(con, a_statements, run_statements(con, run_id))
        edits = _new_runs(con, edit_rows(d), since)
        edits = _holds(con, edits, _past_decisions(con, out), resurface)
        c_lines = run_lines(con, run_id)
    held = set(edits.filter(pl.col("held_by").is_not_null())["edit_id"])
    if edits.height == len(held):
        console.info(
            f"nothing to propose: every statement of the consolidation is already at {out}"
            + (f" or held back ({len(held)})" if held else "")
        )
        return None
    proposed = assemble(a_files, a_lines, as_files(candidate), c_lines, edits_of(edits), held)

    proposal_id = digest("proposal", base_id, run_id, str(out), sorted(held))
    path = proposals_dir(out) / proposal_id[:ID_SHOWN]
    skill_dir = path / skill_name
    write_folder(proposed.files, skill_dir)
    problems = lint_skill(skill_dir, folder_name=skill_name)
    for p in problems:
        console.warn(f"proposal {proposal_id[:ID_SHOWN]}: {p}")
    shown = {
        p: d if isinstance(d, str) else d.decode("utf-8", "replace")
        for p, d in proposed.files.items()
    }
    changes = file_diff(a_files, shown, "live", "proposed")
    (path / "changes.diff").write_text(changes, encoding="utf-8")
    open_edits = edits.filter(pl.col("held_by").is_null())
    new_runs = 0
    if since is not None:
        with sql.connect(lake) as con:
            new_runs = sql.query(con, "trajectories_since", since=since)["n_runs"][0]
    row = {
        "proposal_id": proposal_id,
        "out": str(out),
        "skill_name": skill_name,
        "base_version_id": base_id,
        "against_files_id": against_id,
        "candidate_version_id": record_files(lake, candidate),
        "proposed_version_id": record_files(lake, as_bytes(proposed.files)),
        "run_id": run_id,
        "since": since,
        "n_new_runs": new_runs,
        "n_edits": open_edits.height,
        "n_held": len(held),
        "path": str(path),
        "created_at": dt.datetime.now(dt.UTC),
        "created_by": actor(),
    }
    lake.replace_partition(
        "proposal_edits",
        edits.with_columns(proposal_id=pl.lit(proposal_id)),
        {"proposal_id": proposal_id},
    )
    lake.replace_partition("proposals", pl.DataFrame([row]), {"proposal_id": proposal_id})
    page = _page(d, edits, base, row, changes, lake.uri)
    (path / "review.html").write_text(page, encoding="utf-8")
    review_path = path / review_file.NAME
    if review_file.has_verdicts(review_path):
        console.warn(f"{review_path} already holds verdicts: kept as it is")
    else:
        review_path.write_text(review_file.render(row, edits, lake.uri), encoding="utf-8")
    counts = open_edits.group_by("kind").len()
    return ProposalSummary(
        proposal_id=proposal_id,
        path=path,
        skill_dir=skill_dir,
        base_version_id=base_id,
        counts={k: n for k, n in counts.iter_rows()},
        n_held=len(held),
        n_new_runs=new_runs,
        lint=problems,
    )


def find(lake: Lake, ref: str) -> dict:
    """The proposal `ref` names: its id or a unique prefix, or its folder."""
    if not lake.exists("proposals"):
        raise ProposalError(f"no proposals in {lake.uri} (distill --propose makes one)")
    with sql.connect(lake) as con:
        rows = sql.query(con, "proposals_list").to_dicts()
    folder = Path(ref)
    if folder.is_dir():
        hits = [r for r in rows if Path(r["path"]).resolve() == folder.resolve()]
    else:
        hits = [r for r in rows if r["proposal_id"].startswith(ref.lower())] if ref else []
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ProposalError(f"no proposal {ref!r} in {lake.uri} (`trace2skill review` lists them)")
    raise ProposalError(f"{ref!r} names {len(hits)} proposals: give more of the id")
