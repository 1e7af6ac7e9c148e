"""`trace2skill distill`: the whole job in one command (what `make distill` runs).

    ingest (when given raw paths) -> analyse -> consolidate -> coverage report

Each stage reads and writes the lake only, so distill is the stages run in order with one set
of options: a rerun skips unchanged files, trajectories already analysed and model calls
already answered, and rewrites the skill from the current lessons.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from pathlib import Path

import click

from pipeline.console import Console
from pipeline.consolidate.settings import BATCH_SIZE, FAN_IN, MIN_SUPPORT
from pipeline.lake import Lake
from pipeline.options import (
    analyst_option,
    lake_option,
    model_options,
    pass_console,
    propose_options,
    resolve_model_settings,
)

EXIT_LINT = 5  # the skill was written but failed lint


def report_path(skill_dir: Path) -> Path:
    """Where a skill's coverage report goes: beside the folder, named after it."""
    return skill_dir.parent / f"{skill_dir.name}.report.html"


@click.command("distill")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@lake_option()
@click.option("--format", "format_", default="auto", show_default=True, metavar="NAME",
              help="Input format of PATHS (see `ingest --help`).")  # fmt: skip
@click.option("--source", metavar="NAME", help="Source name for the ingested runs.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outcomes for runs whose source has none (CSV or Parquet).")  # fmt: skip
@analyst_option("Default: single with a model, the offline miner without one.")
@click.option("--where", metavar="SQL",
              help="Only these runs, e.g. \"source = 'tau-bench-airline'\" (columns source, "
                   "task_id, outcome): analysed, and their lessons consolidated.")  # fmt: skip
@click.option("--base-skill", type=click.Path(exists=True, path_type=Path),
              help="Skill folder to deepen; without it a new skill is created.")  # fmt: skip
@click.option("--name", help="Skill name (kebab-case); default: the base skill's, or from --out.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The skill folder to write (its folder name is the skill's name).")  # fmt: skip
@click.option("--mode", type=click.Choice(["parallel", "sequential"]), default="parallel",
              show_default=True, help="Merge tree, or one batch of lessons at a time.")  # fmt: skip
@click.option("--fan-in", type=click.IntRange(min=2), default=FAN_IN, show_default=True,
              help="Inputs per merge node.")  # fmt: skip
@click.option("--min-support", type=click.IntRange(min=1), default=MIN_SUPPORT, show_default=True,
              help="Distinct runs a lesson needs to reach the skill.")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), default=BATCH_SIZE, show_default=True,
              help="Lessons per edit in sequential mode.")  # fmt: skip
@click.option("--max-lessons", type=click.IntRange(min=1), default=None,
              help="Model analysts: most lessons per run (default 3).")  # fmt: skip
@click.option("--max-turns", type=click.IntRange(min=1), default=None,
              help="Agentic analyst: tool-using turns per run (default 12).")  # fmt: skip
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write the coverage report (HTML) beside the skill folder.")  # fmt: skip
@click.option("--since", metavar="VERSION|TIME",
              help="Analyse only runs ingested after this skill version (an id, latest, "
                   "live:OUT) or time (ISO 8601); the proposal counts them as new.")  # fmt: skip
@propose_options
@model_options
@pass_console
def distill(console: Console, paths, lake: Lake, format_, source, labels, analyst, where,
            base_skill, name, out_dir, mode, fan_in, min_support, batch_size, max_lessons,
            max_turns, report, since, propose, resurface, model_overrides):  # fmt: skip
    """Ingest, analyse and consolidate: trajectories in, a skill folder out.

    \b
    PATHS (optional) are raw trajectory files or folders to ingest first; without them the
    lake's trajectories are used. Offline by default (the miner and extractive consolidation,
    no model, no network); give --model (and --base-url) to analyse and merge with a model.

    \b
      trace2skill distill data/tau-bench-airline --lake lake \\
          --base-skill data/tau-bench-airline/base-skill --out out/airline-agent-policy
      trace2skill distill runs/ --lake lake --model gpt-4o-mini --out out/my-agent
      trace2skill distill new-runs/ --lake lake --out out/my-agent --since latest --propose

    \b
    Exit status: 0 done; 3 some input or some trajectories were skipped (see the messages;
    a rerun retries them); 4 nothing to distill; 5 the skill failed lint; 1 bad options.
    """
    from pipeline.analyse.commands import show as show_analyse
    from pipeline.analyse.run import AnalyseError, analyse
    from pipeline.consolidate.commands import show as show_consolidate
    from pipeline.consolidate.commands import show_proposal, user_errors
    from pipeline.consolidate.run import consolidate
    from pipeline.ingest.commands import print_summary as show_ingest
    from pipeline.ingest.run import EXIT_NOTHING, EXIT_OK, IngestError, ingest_paths

    settings = resolve_model_settings(model_overrides)
    status = EXIT_OK
    since_at = since_time(lake, since, out_dir) if since else None
    if paths:
        console.info(f"== ingest {len(paths)} path(s) into {lake.uri}")
        try:
            ingested = ingest_paths(
                lake, list(paths), format=format_, source=source, labels=labels, console=console
            )
        except IngestError as exc:
            raise click.UsageError(str(exc)) from None
        show_ingest(console, ingested)
        status = max(status, ingested.exit_code)
        if ingested.exit_code == EXIT_NOTHING and not lake.exists("trajectories"):
            raise SystemExit(EXIT_NOTHING)

    console.info("== analyse")
    try:
        options = {"max_lessons": max_lessons, "max_turns": max_turns}
        analysed = analyse(
            lake, analyst=analyst, settings=settings, base_skill=base_skill,
            where=arrived_after(where, since_at), console=console, options={k: v for k, v in options.items() if v is not None},
        )  # fmt: skip
    except AnalyseError as exc:
        raise click.ClickException(str(exc)) from None
    show_analyse(console, analysed)
    if analysed.n_failed or analysed.stopped:
        status = max(status, 3)

    console.info("== consolidate")
    try:
        consolidated = consolidate(
            lake, base_skill=base_skill, name=name, out_dir=out_dir, fan_in=fan_in,
            min_support=min_support, mode=mode, batch_size=batch_size, where=where,
            settings=settings, console=console, propose=propose, since=since_at,
            resurface=resurface,
        )  # fmt: skip
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from None
    show_consolidate(console, consolidated)
    show_proposal(console, consolidated.proposal, lake)

    written = None
    if report:
        from pipeline.report.html import write_report

        written = write_report(
            lake, report_path(Path(consolidated.out_dir)), run_id=consolidated.run_id
        )
    _next_steps(console, lake, consolidated, written)
    if not consolidated.lint_ok:
        for problem in consolidated.lint:
            console.error(str(problem))
        raise SystemExit(EXIT_LINT)
    raise SystemExit(status)


def since_time(lake: Lake, since: str, out_dir: Path | None) -> dt.datetime:
    """The time --since names: an ISO 8601 time (UTC unless it says), else a skill version's
    publication time."""
    try:
        at = dt.datetime.fromisoformat(since)
    except ValueError:
        from pipeline.skill.versions import VersionError, resolve

        try:
            return resolve(lake, since, str(out_dir) if out_dir else None)["created_at"]
        except VersionError as exc:
            raise click.BadParameter(
                f"{exc} (give a version or an ISO 8601 time)", param_hint="--since"
            ) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def arrived_after(where: str | None, since: dt.datetime | None) -> str | None:
    """`where` narrowed to runs ingested after `since`. The time is one this command parsed
    and prints itself, so writing it into the filter cannot carry anything else."""
    if since is None:
        return where
    after = f"ingested_at > timestamptz '{since.astimezone(dt.UTC).isoformat()}'"
    return f"({where}) and {after}" if where and where.strip() else after


def _next_steps(console: Console, lake: Lake, consolidated, report: Path | None) -> None:
    console.info("")
    proposed = " (proposed, not published)" if consolidated.proposal is not None else ""
    console.info(f"skill:  {consolidated.out_dir}/SKILL.md{proposed}")
    if report is not None:
        console.info(f"report: {report.as_uri()}")
    from pipeline.sql import SQL_DIR

    example = SQL_DIR / "examples" / "top_failure_clusters.sql"
    with suppress(ValueError):  # shown relative to the working folder when it is below it
        example = example.relative_to(Path.cwd())
    console.info(
        "next:   "
        f"trace2skill coverage --lake {lake.uri}   |   "
        f"trace2skill sql --lake {lake.uri} -f {example}"
    )
