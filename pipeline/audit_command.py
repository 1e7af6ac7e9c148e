"""`trace2skill audit`: run the audits of the lake's tables (`pipeline.audits`) and list what
they found. Reads the lake; writes nothing."""

from __future__ import annotations

import click

from pipeline import audits
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.options import lake_option, pass_console
from pipeline.stages import BY_NAME


@click.command("audit")
@lake_option()
@click.option(
    "--stage",
    type=click.Choice(sorted(BY_NAME)),
    help="Only the audits of the tables this stage writes.",
)
@click.option("--show", is_flag=True, help="Print the first rows each audit found.")
@pass_console
def audit(console: Console, lake: Lake, stage: str | None, show: bool) -> None:
    """Check the lake's tables against their rules: every step belongs to a run and every run
    counts its steps, every lesson has an ok analysis and every analysis one row, every episode
    result names a run. Each audit is a SQL file (sql/audit_*.sql) that returns the rows
    breaking its rule. T2S_AUDIT=1 runs a stage's audits each time it ends.

    Exit status: 0 every audit passed; 1 some found rows (a fault of trace2skill: please report
    it with the rows).
    """
    every = tuple(t for tables in audits.catalogue().values() for t in tables)
    tables = BY_NAME[stage].writes if stage else every
    findings = {f.audit: f for f in audits.run(lake, tables)}
    for name in audits.of_tables(tables):
        found = findings.get(name)
        console.out.print(f"{name}: {'ok' if found is None else f'{found.rows.height} row(s)'}")
        if found is not None and show:
            console.out.print(str(found.rows.head(10)))
    if findings:
        raise SystemExit(1)
