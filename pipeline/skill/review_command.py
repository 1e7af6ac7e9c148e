"""The `review` command: list proposals, or decide one and publish what was accepted.

Reads `proposals`, `proposal_edits` and the proposal's `review.md` (or `--decisions FILE`);
writes through `pipeline.skill.review`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.text import Text

from pipeline import sql
from pipeline.console import Console, plural
from pipeline.lake import Lake
from pipeline.options import lake_option, pass_console
from pipeline.report.commands import require_lake
from pipeline.skill import review_file
from pipeline.skill.proposals import ProposalError, find
from pipeline.skill.review import GateRefused, ReviewError, marked_in, review

EXIT_REFUSED = 3  # as `eval` when its guard refuses


def show_proposal(console: Console, p, lake) -> None:
    """Where a proposal went, what it holds, and the commands that review and check it."""
    if p is None:
        return
    counts = ", ".join(f"{p.counts.get(k, 0)} {k}" for k in ("added", "changed", "removed"))
    held = f"; {p.n_held} held back by earlier rejections" if p.n_held else ""
    new = f"; {plural(p.n_new_runs, 'run')} arrived since" if p.n_new_runs else ""
    console.info(f"proposal {p.proposal_id[:12]}: {counts}{held}{new}")
    console.info(f"review: {p.path / 'review.md'} (diff: {p.path / 'changes.diff'})")
    console.info(f"then:   trace2skill review {p.proposal_id[:12]} --lake {lake.uri}")


def _ask(console: Console):
    def ask(edit: dict) -> tuple[str | None, str | None]:
        console.out.print(
            Text(f"\n{edit['edit_id']} · {edit['kind']} · {edit['section']}", style="bold")
        )
        for line in review_file.describe(edit):
            console.out.print(Text(line))
        word = click.prompt("accept or reject", type=click.Choice(["a", "r", "s"]),
                            default="s", show_choices=True)  # fmt: skip
        if word == "s":
            return None, None
        reason = click.prompt("reason", default="", show_default=False).strip() or None
        return ("accept" if word == "a" else "reject"), reason

    return ask


def _list(console: Console, lake: Lake) -> None:
    with sql.connect(lake) as con:
        rows = sql.query(con, "proposals_list")
    if rows.height == 0:
        console.info(f"no proposals in {lake.uri}: distill --propose makes one")
        return
    console.table(
        "proposals",
        ["proposal", "out", "created", "edits", "held", "accepted", "rejected", "version"],
        [
            (
                r["proposal_id"][:12],
                r["out"],
                f"{r['created_at']:%Y-%m-%d %H:%M}",
                r["n_edits"],
                r["n_held"],
                r["n_accepted"],
                r["n_rejected"],
                (r["version_id"] or "open")[:8],
            )
            for r in rows.iter_rows(named=True)
        ],
    )


@click.command("review")
@lake_option()
@click.argument("proposal", required=False)
@click.option("--decisions", "decisions_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A review file with verdicts (default: the proposal's review.md).")  # fmt: skip
@click.option("--accept-all", is_flag=True, help="Accept every edit not held back.")
@click.option("--force", is_flag=True, help="Publish even if the evaluation gate refused.")
@click.option("--require-eval", is_flag=True,
              help="Refuse a proposal no evaluation has played (a CI gate).")  # fmt: skip
@click.option("--ask/--no-ask", default=None,
              help="Ask for the verdicts the file leaves open (default: on a terminal).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_console
def review_command(console: Console, lake: Lake, proposal, decisions_file, accept_all, force,
                   require_eval, ask, as_json) -> None:  # fmt: skip
    """Accept or reject a proposal's edits; the accepted ones become the next skill version.

    \b
    Without PROPOSAL, lists the proposals. PROPOSAL is an id (or a unique prefix) or the
    proposal's folder. Verdicts come from its review.md as marked (or --decisions FILE), else
    from questions on a terminal, or --accept-all. Rejected statements are remembered: later
    proposals hold them back until their evidence has grown (--resurface on distill).
    If an `eval` played the proposal against the skill in use and refused it, review refuses too
    (exit 3) unless --force.
      trace2skill review --lake lake
      trace2skill review 3f2a9c1d0b4e --lake lake
      trace2skill review out/my-skill.proposals/3f2a9c1d0b4e --lake lake --accept-all
    """
    require_lake(lake)
    if proposal is None:
        _list(console, lake)
        return
    try:
        found = find(lake, proposal)
        if decisions_file is not None and not decisions_file.exists():
            raise ReviewError(f"no decisions file {decisions_file}")
        path = decisions_file or Path(found["path"]) / review_file.NAME
        marked = {} if accept_all or not path.exists() else marked_in(path)
        interactive = (sys.stdin.isatty() if ask is None else ask) and not accept_all
        done = review(
            lake, found, accept_all=accept_all, marked=marked,
            ask=_ask(console) if interactive else None, force=force,
            require_eval=require_eval, console=console,
        )  # fmt: skip
    except GateRefused as exc:
        console.error(str(exc))
        raise SystemExit(EXIT_REFUSED) from None
    except (ProposalError, ReviewError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(done.__dict__ | {"gate": done.gate.__dict__}, indent=2))
        return
    console.info(
        f"proposal {done.proposal_id[:12]}: {plural(len(done.accepted), 'edit')} accepted, "
        f"{len(done.rejected)} rejected, {len(done.held)} held back"
    )
    console.info(f"gate: {done.gate.text()}")
    console.info(f"skill version {(done.version_id or '')[:8]} published at {found['out']}")
