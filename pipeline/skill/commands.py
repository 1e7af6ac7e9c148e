"""The `versions` and `diff` commands: the skill versions the lake records, and what changed.

Read `skill_versions`, `skill_files` and `skill_lines` (through `pipeline.skill.versions` and
`pipeline.skill.diff`); write nothing but the `--html` page asked for.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import click
from rich.text import Text

from pipeline import sql
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.options import lake_option, pass_console
from pipeline.report.commands import require_lake
from pipeline.skill.diff import StatementDiff, diff_json, diff_statements, evidence_text, file_diff
from pipeline.skill.versions import (
    VersionError,
    published_at,
    recorded,
    resolve,
    version_files,
    version_statements,
)

ID_SHOWN = 8
STYLE = {"added": "green", "removed": "red", "changed": "yellow"}
MARK = {"added": "+", "removed": "-", "changed": "~"}


def _short(version: str | None) -> str:
    return (version or "")[:ID_SHOWN]


@click.command("versions")
@lake_option()
@click.option("--out", default=None, help="Only versions published at this skill folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@pass_console
def versions(console: Console, lake: Lake, out: str | None, as_json: bool) -> None:
    """The skill versions consolidations published, newest first, each against its parent.

    \b
    A version is a folder's content (its id a digest of its files): a rerun that writes the same
    skill adds none. Statements added, changed and removed are counted as `diff` finds them.
      trace2skill versions --lake lake --out out/airline-agent-policy
    """
    every = recorded(require_lake(lake))
    rows = published_at(every, out)
    by_id = {r["version_id"]: r for r in every.iter_rows(named=True)}
    counts = []
    with sql.connect(lake) as con:
        for row in rows.iter_rows(named=True):
            parent = by_id.get(row["parent_version_id"])
            if parent is None:
                counts.append(None)
                continue
            d = diff_statements(con, version_statements(con, parent), version_statements(con, row))
            counts.append(d.counts())
    if as_json:
        listed = [r | {"against_parent": c} for r, c in zip(rows.to_dicts(), counts, strict=True)]
        click.echo(json.dumps(listed, indent=2, default=str))
        return
    if rows.height == 0:
        console.info(f"no skill versions recorded in {lake.uri}" + (f" at {out}" if out else ""))
        return
    several = rows["out"].n_unique() > 1  # else the title names the one folder
    console.table(
        f"skill versions at {out or rows['out'][0]}" if not several else "skill versions",
        ["version", "parent", "run", "created", "by", "stmts", "+", "~", "-"]
        + (["out"] if several else []),
        [
            (
                _short(r["version_id"]),
                _short(r["parent_version_id"]),
                _short(r["run_id"]),
                f"{r['created_at']:%Y-%m-%d %H:%M}",
                r["created_by"] or "(found)",
                r["n_statements"],
                *((c["added"], c["changed"], c["removed"]) if c else ("", "", "")),
                *([r["out"]] if several else []),
            )
            for r, c in zip(rows.iter_rows(named=True), counts, strict=True)
        ],
    )
    console.info("+ ~ -: statements added, changed and removed against the parent")


@click.command("diff")
@lake_option()
@click.argument("a")
@click.argument("b")
@click.option("--out", default=None, help="The skill folder `latest` and `previous` refer to.")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the diff as a standalone HTML page here.",
)
@click.option("--files", "with_files", is_flag=True, help="Add a unified diff of the files.")
@pass_console
def diff(console: Console, lake: Lake, a, b, out, as_json, html_path, with_files) -> None:
    """What changed from skill version A to B: statements added, changed and removed.

    \b
    A and B: a version id or a unique prefix of one, live:FOLDER (the version a skill folder
    shows), or latest / previous (the newest version at --out, and its parent). Each statement
    comes with its evidence: distinct runs (failed, succeeded), tasks and lessons behind it.
      trace2skill diff --lake lake previous latest --out out/airline-agent-policy
      trace2skill diff --lake lake 3f2a9c live:out/airline-agent-policy --html diff.html
    """
    require_lake(lake)
    try:
        va, vb = resolve(lake, a, out), resolve(lake, b, out)
    except VersionError as exc:
        raise click.ClickException(str(exc)) from None
    with sql.connect(lake) as con:
        d = diff_statements(con, version_statements(con, va), version_statements(con, vb))
        files = None
        if with_files:
            old, new = version_files(con, va["version_id"]), version_files(con, vb["version_id"])
            files = file_diff(old, new, _short(va["version_id"]), _short(vb["version_id"]))
    if html_path is not None:
        from pipeline.skill.diff_html import render

        page = render(d, va, vb, files=files, lake_uri=lake.uri)
        _write(html_path, page)
        console.info(f"diff page: {html_path.resolve().as_uri()}")
    if as_json:
        payload = {"a": va, "b": vb, **diff_json(d)}
        if with_files:
            payload["files"] = files
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    show(console, d, va, vb)
    if with_files:
        for line in (files or "").splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            console.out.print(Text(line, style=style or ""))


def show(console: Console, d: StatementDiff, a: dict, b: dict) -> None:
    """The diff on the terminal, section by section; texts are printed as text, never markup."""
    c = d.counts()
    console.out.print(
        Text(
            f"{_short(a['version_id'])} (run {a['run_id']}) -> {_short(b['version_id'])} "
            f"(run {b['run_id']}): {c['added']} added, {c['changed']} changed, "
            f"{c['removed']} removed, {c['unchanged']} unchanged",
            style="bold",
        )
    )
    for section, entries in d.by_section().items():
        console.out.print(Text(f"\n## {section}", style="bold"))
        for kind, e in entries:
            line = Text(f"{MARK[kind]} ", style=STYLE[kind])
            if kind == "changed":
                line.append(e["old"]["text"].strip(), style="red")
                line.append(" -> ")
                line.append(e["new"]["text"].strip(), style="green")
                note = f"was {evidence_text(e['old'])}; now {evidence_text(e['new'])}"
                if e["old"]["file"] != e["new"]["file"]:
                    note += f"; moved from {e['old']['file']} to {e['new']['file']}"
            else:
                line.append(e["text"].strip(), style=STYLE[kind])
                note = evidence_text(e)
            line.append(f"  [{note}]", style="dim")
            console.out.print(line)


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@click.command("export")
@lake_option()
@click.argument("run_id")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Skill folder to write (default: the one the run was consolidated to).")  # fmt: skip
@click.option("--propose", is_flag=True, help="Write it as a proposal to review instead.")
@pass_console
def export_command(console: Console, lake: Lake, run_id: str, out_dir, propose: bool) -> None:
    """Write a consolidation run's skill folder from the lake: linted, then published (or proposed).

    \b
    Every consolidation keeps its folder's files in the lake, so any run can be put back: an
    earlier run's skill becomes the next version at OUT (a rollback that keeps the history), or
    goes to another folder. RUN_ID as `trace2skill sql "select run_id, created_at from
    consolidations"` lists them.
      trace2skill export 1ee3adddf95a7646f66f --lake lake --out out/airline-agent-policy
    """
    from pipeline.skill.export import ExportError, export

    require_lake(lake)
    try:
        done = export(lake, run_id, out_dir, propose_change=propose, console=console)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    if done.proposal is not None:
        from pipeline.skill.review_command import show_proposal

        show_proposal(console, done.proposal, lake)
    console.info(f"skill: {done.out_dir}/SKILL.md")
