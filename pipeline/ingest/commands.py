"""The ingest, stats and synth commands."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from pipeline.console import Console
from pipeline.ingest.run import EXIT_NOTHING, EXIT_PARTIAL, IngestError, IngestSummary, ingest_paths
from pipeline.options import lake_option, pass_console

FORMAT_HELP = (
    "auto (detect from content), tau-bench, openai-chat, mini-swe-agent, swe-agent, claude-code, "
    "react-text, parquet, or mapping:FILE (a TOML/YAML mapping for any other JSON/JSONL)."
)
MAX_LISTED = 20


@click.command(epilog="Exit status: 0 everything was read; 3 some records or files were skipped "
               "(each one is listed and kept in the ingest_errors table); 4 nothing could be "
               "read; 2 bad options.")  # fmt: skip
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@lake_option()
@click.option("--format", "format_", default="auto", show_default=True, metavar="NAME",
              help=FORMAT_HELP)  # fmt: skip
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Mapping file (TOML or YAML) describing a JSON/JSONL format; same as "
              "--format mapping:FILE.")  # fmt: skip
@click.option("--source", metavar="NAME",
              help="Source name (the lake's partition). Default: the name of the folder given, "
              "or of the folder holding the file given.")  # fmt: skip
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outcomes for runs whose source has none: CSV or Parquet with trajectory_id "
              "or task_id and outcome or reward, or a SWE-bench report (JSON).")  # fmt: skip
@click.option("--model", metavar="NAME", help="Model name for runs whose source does not say.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="Worker processes (default: one per core).")  # fmt: skip
@pass_console
def ingest(console: Console, paths, lake, format_, mapping, source, labels, model, jobs):
    """Read raw trajectory files into the lake (tables trajectories and steps).

    PATHS are files or folders (walked recursively; hidden files and the lake itself are
    skipped). Re-ingesting an unchanged file does nothing; a changed file replaces its rows.
    """
    try:
        summary = ingest_paths(
            lake, list(paths), format=format_, source=source, labels=labels, console=console,
            model=model, mapping=mapping, jobs=jobs,
        )  # fmt: skip
    except IngestError as exc:
        raise click.UsageError(str(exc)) from None
    print_summary(console, summary)
    ctx = click.get_current_context()
    ctx.exit(summary.exit_code)


def print_summary(console: Console, summary: IngestSummary) -> None:
    files = [f for f in summary.files if f.status != "ignored"]
    if len(files) <= 40:
        rows = [
            (f.file, f"{f.format or '-'} ({f.detected_by or '-'})", f.source, f.status,
             f.n_trajectories, f.n_steps, f.n_skipped, f.n_duplicates)
            for f in files
        ]  # fmt: skip
        console.table(
            "Ingest", ["file", "format (chosen by)", "source", "status", "runs", "steps",
                       "skipped", "duplicates"], rows,
        )  # fmt: skip
    else:
        groups: Counter = Counter()
        totals: dict = {}
        for f in files:
            key = (f.format or "-", f.source, f.status)
            groups[key] += 1
            t = totals.setdefault(key, [0, 0, 0, 0])
            for i, v in enumerate((f.n_trajectories, f.n_steps, f.n_skipped, f.n_duplicates)):
                t[i] += v
        console.table(
            "Ingest", ["format", "source", "status", "files", "runs", "steps", "skipped",
                       "duplicates"],
            [(*k, groups[k], *totals[k]) for k in sorted(groups)],
        )  # fmt: skip
    for p in summary.errors[:MAX_LISTED]:
        console.error(
            f"{p.file}: {p.record}: {p.error}" if p.record != "-" else f"{p.file}: {p.error}"
        )
    if len(summary.errors) > MAX_LISTED:
        console.error(
            f"... and {len(summary.errors) - MAX_LISTED} more (all are in the ingest_errors table)"
        )
    for p in summary.duplicates[:MAX_LISTED]:
        console.detail(f"duplicate: {p.file}: {p.record}: {p.error}")
    for p in summary.ignored:
        console.detail(f"ignored: {p.file}: {p.error}")
    if summary.ignored:
        console.info(f"ignored {len(summary.ignored)} file(s) of no known format (-v lists them)")
    mb = summary.n_bytes / 1e6
    rate = f", {mb / summary.seconds:.1f} MB/s" if summary.seconds > 0 and mb else ""
    n_files = sum(f.status in ("ingested", "replaced", "unchanged") for f in files)
    unchanged = sum(f.status == "unchanged" for f in files)
    console.info(
        f"{summary.n_trajectories} trajectories, {summary.n_steps} steps from {n_files} file(s)"
        f" ({unchanged} unchanged); {summary.n_skipped} record(s) skipped, "
        f"{len(summary.duplicates)} duplicate(s) dropped; read {mb:.1f} MB in "
        f"{summary.seconds:.1f}s{rate}"
    )
    if summary.exit_code == EXIT_PARTIAL:
        console.warn("some input was skipped: see the errors above (exit status 3)")
    elif summary.exit_code == EXIT_NOTHING:
        console.error("nothing could be read (exit status 4)")


@click.command()
def stats():
    """Counts over the lake."""
    raise click.ClickException("stats is not built yet")


@click.command()
def synth():
    """Write synthetic trajectories."""
    raise click.ClickException("synth is not built yet")
