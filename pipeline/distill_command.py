"""`trace2skill distill`: the whole job in one command (what `make distill` runs).

The command-line face of `pipeline.distill.distill`: ingest (when given raw paths) -> analyse
-> consolidate -> coverage report, each stage's summary printed as it ends.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from pathlib import Path

import click

from pipeline.console import Console
from pipeline.consolidate.commands import consolidate_options
from pipeline.distill import EXIT_LINT, EXIT_NOTHING, EXIT_SKIPPED, NoLessonsYet, NothingToDistill
from pipeline.distill import distill as run_distill
from pipeline.errors import UserError
from pipeline.ingest.run import IngestError
from pipeline.lake import Lake
from pipeline.options import (
    analyst_option,
    lake_option,
    model_options,
    pass_console,
    propose_options,
    resolve_model_settings,
)


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
@click.option("--max-lessons", type=click.IntRange(min=1), default=None,
              help="Model analysts: most lessons per run (default 3).")  # fmt: skip
@click.option("--max-turns", type=click.IntRange(min=1), default=None,
              help="Agentic analyst: tool-using turns per run (default 12).")  # fmt: skip
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write the coverage report (HTML) beside the skill folder.")  # fmt: skip
@click.option("--since", metavar="VERSION|TIME",
              help="Analyse only runs ingested after this skill version (an id, latest, "
                   "live:OUT) or time (ISO 8601); the proposal counts them as new.")  # fmt: skip
@consolidate_options
@propose_options
@model_options
@pass_console
def distill(console: Console, paths, lake: Lake, format_, source, labels, analyst, where,
            base_skill, max_lessons, max_turns, report, since, model_overrides,
            **consolidate_options):  # fmt: skip
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
    from pipeline.consolidate.commands import show as show_consolidate
    from pipeline.ingest.commands import print_summary as show_ingest
    from pipeline.skill.review_command import show_proposal

    shows = {"ingest": show_ingest, "analyse": show_analyse, "consolidate": show_consolidate}

    def on_stage(stage: str, summary) -> None:
        shows[stage](console, summary)
        if stage == "consolidate":
            show_proposal(console, summary.proposal, lake)

    since_at = since_time(lake, since, consolidate_options["out_dir"]) if since else None
    analyst_options = {"max_lessons": max_lessons, "max_turns": max_turns}
    try:
        done = run_distill(
            lake, paths, where=where, base_skill=base_skill, since=since_at, report=report,
            settings=resolve_model_settings(model_overrides), console=console,
            on_stage=on_stage,
            ingest={"format": format_, "source": source, "labels": labels},
            analyse={"analyst": analyst,
                     "options": {k: v for k, v in analyst_options.items() if v is not None}},
            consolidate=consolidate_options,
        )  # fmt: skip
    except NothingToDistill as exc:
        console.error(str(exc))
        raise SystemExit(EXIT_NOTHING) from None
    except NoLessonsYet as exc:
        console.error(str(exc))
        raise SystemExit(EXIT_SKIPPED) from None
    except IngestError as exc:
        raise click.UsageError(str(exc)) from None
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    _next_steps(console, lake, done.consolidated, done.report)
    if not done.consolidated.lint_ok:
        for problem in done.consolidated.lint:
            console.error(str(problem))
        raise SystemExit(EXIT_LINT)
    raise SystemExit(done.exit_code)


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
