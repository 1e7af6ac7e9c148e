"""`distill()`: the whole job, from Python: the stages run in order over one lake.

    ingest (when given raw paths) -> analyse -> consolidate (then export) -> coverage report

Each stage reads and writes the lake only, so a rerun skips unchanged files, trajectories already
analysed and model calls already answered, and consolidates the current lessons. The options the
stages share are arguments here (`where`, `base_skill`, `settings`, `since`); the rest go to the
stage that takes them, as keyword dicts for `ingest_paths`, `analyse` and `consolidate`, so every
option of every stage is reachable and none is copied by hand. `trace2skill distill`
(`pipeline.distill_command`) is this function behind the stages' command-line options.

    from pipeline.distill import distill
    done = distill(Lake("lake"), ["runs/"], base_skill="skill/", consolidate={"out_dir": "out/x"})
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.console import Console
from pipeline.errors import UserError
from pipeline.lake import Lake

EXIT_SKIPPED = 3  # some input or some trajectories were skipped: a rerun retries them
EXIT_NOTHING = 4  # nothing to distill
EXIT_LINT = 5  # the skill was written but failed lint


class NothingToDistill(UserError, RuntimeError):
    """No input could be read and the lake holds no trajectories."""


class NoLessonsYet(UserError, RuntimeError):
    """The analysis left error rows and no run in scope has lessons: a rerun retries them."""


@dataclass
class Distilled:
    ingested: Any | None  # IngestSummary, when paths were given
    analysed: Any  # AnalyseSummary
    consolidated: Any  # ConsolidateSummary
    report: Path | None

    @property
    def exit_code(self) -> int:
        status = self.ingested.exit_code if self.ingested is not None else 0
        if self.analysed.n_failed or self.analysed.stopped:
            status = max(status, EXIT_SKIPPED)
        return status


def report_path(skill_dir: Path) -> Path:
    """Where a skill's coverage report goes: beside the folder, named after it."""
    return skill_dir.parent / f"{skill_dir.name}.report.html"


def arrived_after(where: str | None, since: dt.datetime | None) -> str | None:
    """`where` narrowed to runs ingested after `since`. The time is a datetime formatted here,
    so writing it into the filter cannot carry anything else."""
    if since is None:
        return where
    after = f"ingested_at > timestamptz '{since.astimezone(dt.UTC).isoformat()}'"
    return f"({where}) and {after}" if where and where.strip() else after


def distill(
    lake: Lake,
    paths: Sequence[str | Path] = (),
    *,
    where: str | None = None,
    base_skill: str | Path | None = None,
    settings: Any = None,
    since: dt.datetime | None = None,
    report: bool = True,
    ingest: dict | None = None,
    analyse: dict | None = None,
    consolidate: dict | None = None,
    console: Console | None = None,
    on_stage: Callable[[str, Any], None] | None = None,
) -> Distilled:
    """Ingest `paths` (if any), analyse, consolidate and report (see the module docstring).

    `since` analyses only runs ingested after it, and a proposal (consolidate={"propose": True})
    counts them as new. `on_stage(name, summary)` is called after each stage (the command line
    prints the summaries with it). Raises the stages' errors (all `UserError`s),
    `NothingToDistill`, and `NoLessonsYet` when every analysis in scope failed."""
    from pipeline.analyse.run import analyse as run_analyse
    from pipeline.consolidate.run import NoLessons
    from pipeline.consolidate.run import consolidate as run_consolidate
    from pipeline.ingest.run import EXIT_NOTHING as INGESTED_NOTHING
    from pipeline.ingest.run import ingest_paths

    console = console or Console(0)
    done = on_stage or (lambda name, summary: None)
    ingested = None
    if paths:
        console.info(f"== ingest {len(paths)} path(s) into {lake.uri}")
        ingested = ingest_paths(lake, list(paths), console=console, **(ingest or {}))
        done("ingest", ingested)
        if ingested.exit_code == INGESTED_NOTHING and not lake.exists("trajectories"):
            raise NothingToDistill(
                f"nothing to distill: no trajectory could be read into {lake.uri}"
            )

    console.info("== analyse")
    analysed = run_analyse(
        lake, settings=settings, base_skill=base_skill, where=arrived_after(where, since),
        console=console, **(analyse or {}),
    )  # fmt: skip
    done("analyse", analysed)

    console.info("== consolidate")
    try:
        consolidated = run_consolidate(
            lake, base_skill=base_skill, where=where, settings=settings, since=since,
            console=console, **(consolidate or {}),
        )  # fmt: skip
    except NoLessons:
        if not analysed.n_failed:
            raise
        first = analysed.errors[0][1] if analysed.errors else "see analyses.error"
        raise NoLessonsYet(
            f"no lessons to consolidate: the analysis of {analysed.n_failed} run(s) ended as "
            f"error rows and no run in scope has lessons, so no skill was written; a rerun "
            f"retries them (the first: {first})"
        ) from None
    done("consolidate", consolidated)

    written = None
    if report:
        from pipeline.report.html import write_report

        written = write_report(
            lake, report_path(Path(consolidated.out_dir)), run_id=consolidated.run_id
        )
    return Distilled(ingested, analysed, consolidated, written)
