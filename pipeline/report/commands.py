"""The sql, warehouse and coverage commands: SQL over the lake, a DuckDB file of views, and the
coverage analysis with its HTML report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import polars as pl

from pipeline.console import Console
from pipeline.lake import Lake, LakeError
from pipeline.options import lake_option, pass_console
from pipeline.report import output, repl, svg
from pipeline.report.coverage import THIN_TRAJECTORIES, Coverage, CoverageError
from pipeline.report.drift import MATCH_THRESHOLD, REDISTILL_BELOW
from pipeline.report.runs import scope_text


def require_lake(lake: Lake) -> Lake:
    """The lake must exist; a typo should not look like an empty lake."""
    if not lake.is_present():
        raise click.ClickException(f"no lake at {lake.uri} (nothing ingested there yet?)")
    return lake


def parse_params(pairs: tuple[str, ...]) -> dict[str, object]:
    """NAME=VALUE pairs; values that read as numbers are passed as numbers."""
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        for cast in (int, float):
            try:
                params[name.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            params[name.strip()] = value
    return params


@click.command("sql")
@lake_option()
@click.argument("query", required=False)
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the query from a file, e.g. sql/examples/top_failure_clusters.sql.",
)
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Value of $NAME."
)
@click.option("--format", "fmt", type=click.Choice(output.FORMATS), help="Default: table.")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result here (format from the suffix unless --format).",
)
@click.option("--max-rows", default=100, show_default=True, help="Rows shown as a table.")
@click.option("-i", "--interactive", is_flag=True, help="An interactive prompt.")
@pass_console
def sql(
    console: Console,
    lake: Lake,
    query: str | None,
    file: Path | None,
    params: tuple[str, ...],
    fmt: str | None,
    out: Path | None,
    max_rows: int,
    interactive: bool,
) -> None:
    """Query the lake with SQL (DuckDB), read-only.

    Every lake table is a view under its own name, beside the convenience views tool_calls,
    lesson_facts, skill_lessons, lesson_fate and latest_* (the newest consolidation run).
    With no QUERY and no -f, the query is read from stdin, or a prompt opens on a terminal.
    Only SELECT statements run (WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, VALUES); nothing else
    (COPY, ATTACH, INSTALL, LOAD, SET, ...) and no file outside the lake's tables. A FILE may
    hold several queries when the result is a table on the terminal: each is shown in turn.

    \b
    Examples:
      trace2skill sql --lake lake "select outcome, count(*) from trajectories group by 1"
      trace2skill sql --lake lake -f sql/examples/skill_line_lineage.sql \\
          -p file=SKILL.md -p line_no=27 --format csv
      trace2skill sql --lake lake -i
    """
    from pipeline.report import query as user_sql

    if query is not None and file is not None:
        raise click.UsageError("give a QUERY or -f FILE, not both")
    require_lake(lake)
    fmt = output.pick_format(fmt, out)
    con = user_sql.connect(lake)
    try:
        if query is None and file is None and (interactive or sys.stdin.isatty()):
            repl.run(con, console, max_rows=max_rows)
            return
        if interactive:
            raise click.UsageError("--interactive takes no QUERY or -f FILE")
        text = file.read_text(encoding="utf-8") if file is not None else query
        if text is None:
            text = sys.stdin.read()
        if not text.strip():
            raise click.UsageError("empty query")
        where = f" in {file}" if file is not None else ""
        try:
            found = user_sql.statements(text)
            if len(found) > 1 and (fmt != "table" or out is not None):
                raise click.UsageError(
                    f"the query{where} holds {len(found)} statements, and only a table on the "
                    "terminal shows several: keep one query for --format and --out"
                )
            frames = user_sql.run(con, found, parse_params(params))
        except user_sql.QueryError as exc:
            raise click.ClickException(exc.message(where)) from None
        for frame in frames:
            output.emit(console, frame, fmt, out, max_rows=max_rows)
    finally:
        con.close()


@click.command("warehouse")
@lake_option()
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file to write. Default: LAKE/warehouse.duckdb.",
)
@pass_console
def warehouse(console: Console, lake: Lake, out: Path | None) -> None:
    """Build a DuckDB file of views over the lake, for other tools.

    The views read the lake's Parquet in place (the Parquet stays the source of truth): new rows
    and new runs show up without a rebuild; rebuild when a table gets its first rows. Open it
    with any DuckDB 2 client, e.g. `duckdb LAKE/warehouse.duckdb`.
    """
    from pipeline.report.views import build_warehouse, view_names

    require_lake(lake)
    out = out or Path(lake.base) / "warehouse.duckdb"
    try:
        path = build_warehouse(lake, out)
    except LakeError as exc:
        raise click.ClickException(str(exc)) from None
    console.info(f"wrote {path}: every lake table and {len(view_names())} convenience views")
    click.echo(str(path))


@click.command("coverage")
@lake_option()
@click.option(
    "--skill",
    type=click.Path(file_okay=False, path_type=Path),
    help="Skill folder: report on the run that wrote it (default: the newest run).",
)
@click.option("--run", "run_id", metavar="RUN_ID", help="Consolidation run to report on.")
@click.option(
    "--against",
    metavar="LAKE2",
    help="Measure drift on the runs of another lake (a new batch, analysed).",
)
@click.option(
    "--where",
    metavar="SQL",
    help="Hold out the runs this condition on trajectories selects and measure drift on them, "
    "e.g. \"source = 'tau-new'\".",
)
@click.option(
    "--thin",
    type=click.IntRange(min=1),
    default=THIN_TRAJECTORIES,
    show_default=True,
    help="A statement or section behind fewer distinct runs rests on thin evidence.",
)
@click.option(
    "--match-threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Title cosine at which a new lesson matches a lesson of the skill in its block. "
    f"Default: the run's semantic threshold ({MATCH_THRESHOLD} unless set at consolidate).",
)
@click.option(
    "--redistill-below",
    type=click.FloatRange(0, 1),
    default=REDISTILL_BELOW,
    show_default=True,
    help="Advise re-distilling when fewer new lessons than this share are already known.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary and tables as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file. Default: SKILL_NAME.report.html beside the skill folder (where distill "
    "writes it), else report.html here.",
)
@click.option("--no-html", is_flag=True, help="Do not write the HTML report.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write every coverage table as Parquet into this folder.",
)
@pass_console
def coverage(
    console: Console,
    lake: Lake,
    skill: Path | None,
    run_id: str | None,
    against: str | None,
    where: str | None,
    thin: int,
    match_threshold: float | None,
    redistill_below: float,
    as_json: bool,
    html_path: Path | None,
    no_html: bool,
    out_dir: Path | None,
) -> None:
    """What the skill covers, what became of every lesson, and what new runs add.

    The runs counted are those the consolidation was built from (its --where, as recorded).

    \b
    - failed runs covered (one of their lessons reached the skill), by source, model, task, tool;
      successful runs whose lessons reached it;
    - the fate of every lesson: merged into which statement, deduplicated into which lesson,
      dropped where and why;
    - the runs behind each statement and section, and which rest on thin evidence;
    - drift (--against LAKE2 or --where SQL): the share of new lessons the skill already holds.
    """
    from pipeline.report.coverage import coverage as compute
    from pipeline.report.html import write_report

    require_lake(lake)
    if against is not None and where is not None:
        raise click.UsageError("give --against or --where, not both")
    if against is not None:
        require_lake(Lake(against))
    try:
        cov = compute(
            lake,
            run_id=run_id,
            against=against,
            where=where,
            skill=skill,
            thin=thin,
            match_threshold=match_threshold,
            redistill_below=redistill_below,
        )
    except CoverageError as exc:
        raise click.ClickException(str(exc)) from None
    report = None
    if not no_html:
        report = write_report(lake, html_path or _default_html(cov), coverage_result=cov)
    if out_dir is not None:
        written = cov.write(out_dir)
        console.info(f"wrote {len(written)} files to {out_dir}")
    if as_json:
        payload = cov.to_json() | {"report": None if report is None else str(report)}
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_summary(console, cov)
    for warning in cov.warnings:
        console.warn(warning)
    if report is not None:
        console.info(f"report: {report.as_uri()}")


def _default_html(cov: Coverage) -> Path:
    """Beside the skill folder, named after it (where distill writes it), else here."""
    from pipeline.distill import report_path

    out_dir = cov.run.get("out_dir")
    if out_dir and Path(out_dir).parent.is_dir():
        return report_path(Path(out_dir))
    return Path("report.html")


SHOWN = 10  # values per dimension in the printed tables (the report and --out have them all)
COLUMNS = ["dimension", "value", "covered", "share", "n_dropped", "n_not_in_run", "n_no_lessons"]


def print_summary(console: Console, cov: Coverage) -> None:
    s, run = cov.summary, cov.run
    console.info(
        f"run {run['run_id']} ({run.get('mode')}, {run.get('model')}, "
        f"{str(run.get('created_at'))[:19]}), skill {run.get('out_dir')}"
    )
    console.info(scope_text(cov.settings["scope"]))
    by = cov.by.with_columns(
        covered=pl.format("{}/{}", "n_covered", "n_trajectories"),
        share=pl.col("share_covered").map_elements(lambda v: f"{v:.0%}", return_dtype=pl.String),
    )
    for outcome, title in (
        ("failure", "Failed runs covered"),
        ("success", "Successful runs whose lessons reached the skill"),
    ):
        rows = []
        for (dim,), group in by.filter(pl.col("outcome") == outcome).group_by(
            "dimension", maintain_order=True
        ):
            rows += group.head(SHOWN).select(COLUMNS).rows()
            if group.height > SHOWN:
                rows.append((dim, f"({group.height - SHOWN} more)", "", "", "", "", ""))
        if not rows:
            console.info(f"{title}: no such runs")
            continue
        console.table(
            f"{title} (most runs not covered first)",
            ["by", "value", "covered", "share", "dropped", "not read", "no lessons"],
            rows,
        )
    console.table("Lesson fate", ["fate", "stage", "lessons", "runs"], cov.fate_summary.iter_rows())
    if cov.drop_reasons.height:
        reasons = cov.drop_reasons.head(SHOWN)
        console.table(
            "Why lessons did not reach the skill"
            + (
                f" ({SHOWN} commonest of {cov.drop_reasons.height})"
                if reasons.height < cov.drop_reasons.height
                else ""
            ),
            ["fate", "stage", "reason", "lessons", "runs"],
            reasons.iter_rows(),
        )
    thin = cov.sections.filter(pl.col("is_thin"))
    if thin.height:
        console.table(
            f"Sections on thin evidence (< {cov.settings['thin']} runs)",
            ["file", "section", "statements", "runs"],
            thin.select("file", "section", "n_lesson_statements", "n_trajectories").iter_rows(),
        )
    else:
        console.info(f"sections on thin evidence (< {cov.settings['thin']} runs): none")
    console.info(
        f"statements backed by lessons: {s['statements']} ({s['statement_lines']} lines), "
        f"on thin evidence (< {cov.settings['thin']} runs): {s['statements_thin']}, "
        f"without evidence: {s['statements_without_evidence']}"
    )
    console.info(f"lessons read: {s['lessons_read']}, unaccounted for: {s['lessons_unaccounted']}")
    _print_contrasts(console, cov)
    if cov.drift is not None:
        d = cov.drift.summary
        console.table(
            f"Drift ({cov.drift.origin}, title cosine >= {cov.drift.threshold})",
            ["new runs", "new lessons", "already in the skill", "failed runs with a known lesson"],
            [
                (
                    d["n_trajectories"],
                    d["n_lessons"],
                    f"{d['n_lessons_matched']} ({d['share_lessons_matched'] or 0:.0%})",
                    f"{d['n_failures_matched']}/{d['n_failures']}",
                )
            ],
        )
        console.info(d["verdict"])


def _print_contrasts(console: Console, cov: Coverage) -> None:
    if cov.contrasts.height == 0:
        console.info("behaviour contrasts: none measured (run `trace2skill analyse` on this lake)")
        return
    findings = cov.contrasts.filter(pl.col("is_finding"))
    console.info(
        f"behaviour contrasts: {cov.contrasts.height} behaviours compared, "
        f"{findings.height} findings"
    )
    if findings.height:
        console.table(
            "What successful runs do differently (findings)",
            ["source", "behaviour", "succeeded/with", "succeeded/without", "difference [95%]", "q"],
            [
                (
                    r["source"],
                    r["phrase"],
                    f"{r['success_with']}/{r['n_with']}",
                    f"{r['success_without']}/{r['n_without']}",
                    svg.effect_text(r["decided_diff"], r["decided_ci_low"], r["decided_ci_high"]),
                    f"{r['q_value']:.2g}",
                )
                for r in findings.head(SHOWN).iter_rows(named=True)
            ],
        )
