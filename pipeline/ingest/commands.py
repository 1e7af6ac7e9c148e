"""The ingest, stats and synth commands."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import click
import polars as pl

from pipeline.console import Console
from pipeline.ingest import formats
from pipeline.ingest.run import EXIT_NOTHING, EXIT_PARTIAL, IngestError, IngestSummary, ingest_paths
from pipeline.ingest.stats import SECTIONS, lake_stats
from pipeline.ingest.synth import FAMILY_NAMES as SYNTH_FAMILIES
from pipeline.ingest.synth import FORMATS as SYNTH_FORMATS
from pipeline.ingest.synth import write_synthetic
from pipeline.options import lake_option, pass_console

FORMAT_HELP = (
    f"auto (detect from content), {', '.join(m.NAME for m in formats.BUILTIN)}, a format an "
    f"installed package adds (entry points {formats.ENTRY_POINT_GROUP}), or mapping:FILE (a "
    "TOML/YAML mapping for any other JSON/JSONL)."
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
            (f.file, f.format or "-", f.source, f.status, f.n_trajectories, f.n_steps,
             f.n_skipped, f.n_duplicates)
            for f in files
        ]  # fmt: skip
        console.table(
            "Ingest", ["file", "format", "source", "status", "runs", "steps", "skipped",
                       "duplicates"], rows,
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
    if len(summary.duplicates) > MAX_LISTED:
        console.detail(f"... and {len(summary.duplicates) - MAX_LISTED} more duplicates")
    for p in summary.ignored:
        console.detail(f"ignored: {p.file}: {p.error}")
    if summary.ignored:
        console.info(f"ignored {len(summary.ignored)} file(s) of no known format (-v lists them)")
    chosen = Counter(f.detected_by for f in files if f.status not in ("failed", "ignored"))
    how = {"content": "detected from content", "forced": "given with --format",
           "previous": "as at the previous ingest (file unchanged)"}  # fmt: skip
    if chosen:
        console.info(
            "format: " + ", ".join(f"{how.get(k, k)} ({n})" for k, n in sorted(chosen.items()))
        )
    mb = summary.n_bytes / 1e6
    rate = f", {mb / summary.seconds:.1f} MB/s" if summary.seconds > 0 and mb else ""
    n_files = sum(f.status in ("ingested", "replaced", "unchanged") for f in files)
    unchanged = sum(f.status == "unchanged" for f in files)
    unreadable = (
        f", {summary.n_unreadable_folders} folder(s) unreadable"
        if summary.n_unreadable_folders
        else ""
    )
    console.info(
        f"{summary.n_trajectories} trajectories, {summary.n_steps} steps from {n_files} file(s)"
        f" ({unchanged} unchanged); {summary.n_skipped} record(s) skipped{unreadable}, "
        f"{len(summary.duplicates)} duplicate(s) dropped; read {mb:.1f} MB in "
        f"{summary.seconds:.1f}s{rate}"
    )
    if summary.exit_code == EXIT_PARTIAL:
        console.warn("some input was skipped: see the errors above (exit status 3)")
    elif summary.exit_code == EXIT_NOTHING:
        console.error("nothing could be read (exit status 4)")


@click.command()
@lake_option()
@click.option("--json", "as_json", is_flag=True, help="Print every section as one JSON object.")
@click.option("--source", metavar="NAME", help="Only this source.")
@click.option("--tasks", "top_tasks", type=click.IntRange(min=1), default=15, show_default=True,
              metavar="N", help="How many tasks to list (those with the most runs).")  # fmt: skip
@pass_console
def stats(console: Console, lake, as_json, source, top_tasks):
    """Counts over the lake: sources, outcomes, models, tasks, steps, tools and raw files.

    Per tool: calls, results and the error rate (results flagged as errors / results). The
    queries are sql/stats_*.sql; the same numbers come out as JSON with --json.
    """
    sections = lake_stats(lake, source=source, top_tasks=top_tasks)
    if as_json:
        payload = {name: df.to_dicts() for name, df in sections.items()}
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    if sections["sources"].height == 0:
        which = f" from source {source}" if source else ""
        console.warn(f"{lake.uri} holds no trajectories{which}: run trace2skill ingest first")
        return
    for name, (_, title) in SECTIONS.items():
        df = sections[name]
        if name == "files":
            bad = df.filter((pl.col("skipped") > 0) | (pl.col("status") == "failed"))
            console.info(f"{df.height} raw file(s) ingested, {bad.height} with skipped records")
            df, title = bad.drop("ingested_at"), "Raw files with skipped records"
            if df.height == 0:
                continue
        console.table(title, df.columns, df.rows())


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              metavar="DIR", help="Folder to write into (created if missing).")  # fmt: skip
@click.option("-n", "--trajectories", "n", required=True, type=click.IntRange(min=1), metavar="N",
              help="How many runs to write (ingesting DIR gives exactly N trajectories).")  # fmt: skip
@click.option("--format", "format_", default="openai-chat", show_default=True,
              type=click.Choice(SYNTH_FORMATS), help="File format to write.")  # fmt: skip
@click.option("--family", type=click.Choice(SYNTH_FAMILIES),
              help="Write only this task family (default: the format's usual mix).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="Worker processes (default: one per core).")  # fmt: skip
@pass_console
def synth(console: Console, out_dir: Path, n: int, format_: str, family, seed: int, jobs):
    """Write realistic synthetic trajectories in any supported format.

    Task families: booking (an airline agent with tools), coding (a shell agent fixing a bug,
    with failing tests) and qa (ReAct search). Recurring failure patterns (a tool rejecting a
    date format, an update without the lookup it needs, identical calls in a loop, tests run
    before installing, an edit that did not apply, ...) are injected at rates that differ by
    model and recorded in the grader's view. SWE-agent, mini-swe-agent and Claude Code runs keep
    outcomes apart, as real ones do: ingest them with --labels DIR/report.json (or labels.csv).

    --family swebench (openai-chat, parquet, mini-swe-agent, swe-agent) runs every task 8 times
    with behaviour effects planted on the outcome (reproducing the bug first and testing after
    the last edit help, editing the tests hurts, others do nothing); its SWE files carry their
    own outcome.
    """
    started = time.perf_counter()
    try:
        with console.progress("synth", total=n) as advance:
            paths = write_synthetic(
                out_dir, n, format=format_, seed=seed, family=family, jobs=jobs, progress=advance
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    seconds = time.perf_counter() - started
    mb = sum(p.stat().st_size for p in paths) / 1e6
    console.info(
        f"wrote {n} {format_} runs in {len(paths)} file(s) under {out_dir}: {mb:.1f} MB in "
        f"{seconds:.1f}s ({mb / max(seconds, 1e-9):.1f} MB/s)"
    )
    labels = next((p for p in paths if p.name in ("report.json", "labels.csv")), None)
    hint = f" --labels {labels}" if labels else ""
    console.info(f"next: trace2skill ingest {out_dir} --lake LAKE{hint}")
