"""`consolidate()`: lessons in the lake -> the consolidation tables, then the skill exported.

Reads `lessons` and `trajectories`; writes `consolidations`, `clusters`, `cluster_members`,
`merge_nodes`, `merge_edges`, `patch_ops`, `skill_lines`, `dropped` and `consolidation_scope`,
each partitioned by the run id (a digest of the input lesson ids and every setting, so a rerun
replaces its own rows and other runs sit beside it), the folder's files in `skill_files` (the
run's row names them), and `llm_calls` through the model layer when a model summarises and
merges (`models.py`; offline otherwise). The tables are written first; then, unless told not
to, `pipeline.skill.export` reads the folder back from them, lints it and publishes it at OUT
(named after the skill, as Agent Skills require) as the next version, or proposes it, or leaves
it in `OUT.rejected/` when lint fails and the run fails listing the problems (the skill in use
is left untouched). So the run a folder names in its `consolidation-run` always has its rows.
One run at a time writes OUT; a second fails at once naming it.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.consolidate.dedupe import FilterError, lesson_facts
from pipeline.consolidate.models import Models
from pipeline.consolidate.parallel import run_parallel
from pipeline.consolidate.render import Layout, RunIndex
from pipeline.consolidate.sequential import run_sequential
from pipeline.consolidate.settings import (
    BATCH_SIZE,
    FAN_IN,
    MIN_SUPPORT,
    SettingsError,
    Thresholds,
)
from pipeline.consolidate.write import apply_outcome, unaccounted_lessons, write_tables
from pipeline.errors import UserError
from pipeline.ids import digest
from pipeline.lake import Lake
from pipeline.llm import ModelSettings
from pipeline.llm.embed import get_embedder
from pipeline.scope import scope_rows
from pipeline.skill.document import slug
from pipeline.skill.export import ExportError, export, lint_files
from pipeline.skill.folder import (
    RUN_KEY,
    SkillFolder,
    check_target,
    empty_skill,
    load_skill,
)
from pipeline.skill.lint import KEBAB, LintProblem
from pipeline.skill.proposals import RESURFACE
from pipeline.skill.publish import recover, writer_lock
from pipeline.skill.versions import record_files

MODES = ("parallel", "sequential")
DUCKDB_MEMORY = "4GB"


class ConsolidateError(UserError, RuntimeError):
    """Consolidation cannot run as asked, or its result failed a check."""


class NoLessons(ConsolidateError):
    """No lesson is in the consolidation's scope."""


@dataclass
class ConsolidateSummary:
    run_id: str
    mode: str
    name: str
    out_dir: Path
    n_lessons: int
    n_clusters: int
    n_kept: int
    n_dropped: int
    n_nodes: int
    n_ops: int
    n_conflicts: int
    n_skill_lines: int
    op_status: dict[str, int]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    lint: list[LintProblem] = field(default_factory=list)
    model: str = "offline"
    n_calls: int = 0  # sent to the server (embeddings included)
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    n_fallbacks: int = 0  # extractive summaries and offline merge steps standing in for the model
    n_omitted: int = 0  # merge inputs the model left out even after a re-ask
    budget_spent: bool = False
    proposal: object | None = None  # ProposalSummary when proposed instead of published

    @property
    def lint_ok(self) -> bool:
        return not self.lint


def _warn_unplaced(facts: pl.DataFrame, base: SkillFolder, console: Console) -> None:
    """Warn when most lessons target sections the base skill lacks: the runs were probably
    analysed without it, and each of those targets would become a new section."""
    targets = facts["section"].drop_nulls()
    # the same match the patch makes when it places a lesson under a base section
    absent = [t for t in targets.unique().to_list() if base.skill.find_section(t) is None]
    missing = targets.filter(targets.is_in(absent))
    if missing.len() * 2 > targets.len():
        examples = ", ".join(repr(t) for t in missing.unique().sort().head(3).to_list())
        console.warn(
            f"{missing.len():,} of {targets.len():,} lessons target sections the base skill does "
            f"not have (e.g. {examples}); each becomes a new section. Were the runs analysed "
            "with this --base-skill?"
        )


def _check_args(mode: str, fan_in: int, min_support: int, batch_size: int, name: str | None):
    if mode not in MODES:
        raise SettingsError(f"mode must be one of {MODES}, got {mode!r}")
    if fan_in < 2:
        raise SettingsError(f"fan-in must be at least 2, got {fan_in}")
    if min_support < 1:
        raise SettingsError(f"min-support must be at least 1, got {min_support}")
    if batch_size < 1:
        raise SettingsError(f"batch-size must be at least 1, got {batch_size}")
    if name is not None and (not KEBAB.match(name) or len(name) > 64):
        raise SettingsError(f"name {name!r} must be kebab-case, at most 64 characters")


def _resolve_out(out_dir, name, base, sources, console) -> tuple[Path, str]:
    """The skill folder and the skill's name, which Agent Skills require to be the same.

    With `out_dir`, the folder is `out_dir` and the name its last part (`name`, if given, must
    agree). Without, the name is `name`, else the base skill's, else `<source>-skill`, and the
    folder `out/<name>`."""
    base_name = (base.skill.frontmatter or {}).get("name") if base else None
    if out_dir is None:
        default = slug(f"{sources[0]}-skill") if len(sources) == 1 else "distilled-skill"
        name = name or (base_name if isinstance(base_name, str) else None) or default
        out = Path("out") / name
    else:
        out = Path(out_dir)
        if name is not None and name != out.name:
            raise SettingsError(
                f"--name {name!r} differs from the folder it would be written to ({out.name!r}): "
                "Agent Skills name the folder after the skill; drop --name or change --out"
            )
        name = out.name
    if not KEBAB.match(name) or len(name) > 64:
        raise SettingsError(
            f"the skill's name {name!r} (the name of its folder) must be kebab-case, at most "
            "64 characters: choose another --out"
        )
    if base_name and base_name != name:
        console.warn(f"the skill is named {name!r} after its folder (the base skill's name "
                     f"was {base_name!r}); write it to a folder named {base_name!r} to keep it")  # fmt: skip
    return out, name


def _connect(lake: Lake):
    """DuckDB over the lake, with a memory cap: past it, DuckDB spills to a temporary folder
    instead of holding every buffer (at 1M lessons the peak falls from 9 GB to 5 GB)."""
    con = sql.connect(lake)
    con.execute("set enable_progress_bar = false")
    con.execute(f"set memory_limit = '{DUCKDB_MEMORY}'")
    spill = (Path(tempfile.gettempdir()) / "trace2skill-duckdb").as_posix().replace("'", "''")
    con.execute(f"set temp_directory = '{spill}'")
    return con


def _lessons_digest(facts: pl.DataFrame) -> str:
    h = hashlib.blake2b(digest_size=16)
    for chunk in facts["lesson_id"].sort().to_list():
        h.update(chunk.encode() + b"\n")
    return h.hexdigest()


def _description(facts: pl.DataFrame, sections: list[str]) -> str:
    """A new skill's description: where its lessons come from and what they cover."""
    n_runs = facts["trajectory_id"].n_unique()
    sources = sorted(s for s in facts["source"].unique().to_list() if s)
    return (
        f"Lessons distilled from {n_runs} agent runs"
        + (f" ({', '.join(sources[:5])})" if sources else "")
        + (f" about {', '.join(sections[:12])}" if sections else "")
        + ". Use it when doing these tasks; each lesson recurred across separate runs."
    )[:1024]


def _start_folder(base: SkillFolder | None, name: str, facts: pl.DataFrame, min_support: int):
    if base is not None:
        folder = copy.deepcopy(base)
        folder.skill.frontmatter = dict(folder.skill.frontmatter or {}) | {"name": name}
        return folder
    description = _description(facts, [])
    title = name.replace("-", " ").capitalize()
    intro = (
        f"Lessons that recurred in at least {min_support} separate agent runs, consolidated "
        "from their trajectories. Details and evidence for each are in `references/`."
    )
    return empty_skill(name, description, title, intro)


def _read_facts(
    con, lake: Lake, where: str | None, analyses: str, console: Console
) -> pl.DataFrame:
    """The lessons to consolidate, or ConsolidateError saying why there are none."""
    try:
        facts = lesson_facts(con, where, analyses)
    except FilterError as exc:
        raise ConsolidateError(str(exc)) from None
    if facts.height == 0:
        if where:
            raise NoLessons(f"no lessons in {lake.uri} match --where {where!r}")
        if analyses == "latest" and lake.scan("lessons").select(pl.len()).collect().item():
            raise NoLessons(
                f"the latest analyses of the runs in {lake.uri} found no lessons "
                "(--analyses all reads the earlier analyses too)"
            )
        raise NoLessons(f"no lessons in {lake.uri}: run `trace2skill analyse` first")
    orphans = facts.filter(pl.col("source").is_null()).height
    if orphans:
        console.warn(
            f"{orphans} lesson(s) cite trajectories not in the lake: support counts "
            "them as runs of unknown outcome and task"
        )
    return facts


def _apply(con, start: SkillFolder, outcome, facts: pl.DataFrame, console: Console):
    """The merge outcome applied to the starting folder; every lesson kept or dropped, checked."""
    written = apply_outcome(con, start, outcome, facts)
    for op, res in zip(outcome.patch, written.results, strict=True):
        if res.status != "applied":
            console.warn(
                f"patch op {op.op} on {op.file} [{op.section}]: {res.status}: {res.message}"
            )
    dropped = pl.concat([outcome.dropped, written.dropped]).sort("lesson_id", "stage")
    bad = unaccounted_lessons(con, facts, written.skill_lines, dropped)
    if bad.height:
        raise ConsolidateError(
            f"{bad.height} lesson(s) unaccounted for, e.g. {bad['lesson_id'][0]}: {bad['problem'][0]}"
        )
    return written, dropped


def _counts(outcome, written, dropped: pl.DataFrame) -> dict:
    status = written.patch_ops.group_by("status").len().sort("status")
    return {
        "n_clusters": outcome.clusters.height,
        "n_kept": outcome.clusters.filter(pl.col("kept")).height,
        "n_dropped": dropped["lesson_id"].n_unique(),
        "n_nodes": len(outcome.nodes),
        "n_ops": outcome.n_ops,
        "n_conflicts": outcome.n_conflicts,
        "n_skill_lines": written.skill_lines.filter(
            pl.col("origin").is_in(["added", "revised"])
        ).height,
        "op_status": dict(status.iter_rows()),
    }


def _usage(models: Models, embedder) -> dict:
    usage = models.usage(embedder)
    return {
        "model": models.model,
        "budget_spent": models.budget_spent,
        "n_calls": usage.n_calls,
        "cache_hits": usage.cache_hits,
        "cost_usd": usage.cost_usd,
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
    }


def _row(s: ConsolidateSummary, settings_json: dict, base_dir: Path | None, files_id: str) -> dict:
    """The run's `consolidations` row."""
    return {
        "mode": s.mode, "model": s.model, "settings": json.dumps(settings_json, sort_keys=True),
        "base_skill": str(base_dir) if base_dir else None, "out_dir": str(s.out_dir),
        "n_lessons": s.n_lessons, "n_clusters": s.n_clusters, "n_kept": s.n_kept,
        "n_skill_lines": s.n_skill_lines, "n_calls": s.n_calls,
        "tokens_in": s.tokens_in, "tokens_out": s.tokens_out,
        "cache_hits": s.cache_hits, "cost_usd": s.cost_usd, "n_fallbacks": s.n_fallbacks,
        "seconds": s.seconds, "n_dropped": s.n_dropped, "n_nodes": s.n_nodes,
        "n_ops": s.n_ops, "lint_ok": s.lint_ok, "created_at": dt.datetime.now(dt.UTC),
        "skill_files_id": files_id,
    }  # fmt: skip


def consolidate(
    lake: Lake,
    *,
    base_skill: str | Path | None = None,
    name: str | None = None,
    out_dir: str | Path | None = None,
    fan_in: int = FAN_IN,
    min_support: int = MIN_SUPPORT,
    mode: str = "parallel",
    batch_size: int = BATCH_SIZE,
    where: str | None = None,
    analyses: str = "latest",
    settings: ModelSettings | None = None,
    console: Console | None = None,
    propose: bool = False,
    export_folder: bool = True,
    since: dt.datetime | None = None,
    resurface: float | None = None,
    **thresholds,
) -> ConsolidateSummary:
    """Consolidate the lake's lessons into the skill folder `out_dir` (named after it).

    Without `out_dir`, the folder is `out/<name>`: `name`, the base skill's name, or
    `<source>-skill`. `analyses` is "latest" (for each run and analyst, the lessons of the
    analyst's latest configuration; different analysts add up) or "all" (every configuration's). `settings` picks the model that summarises and merges ('offline', the
    default, writes extractively) and, unless `embedder` is given, the embedder. See the module
    docstring for what is read and written. With `propose`, the folder is not published: it
    becomes a proposal against the version at OUT (`pipeline.skill.proposals`), its new runs
    those ingested after `since`, and earlier rejections held back until their runs have grown
    `resurface` times."""
    started = time.perf_counter()
    console = console or Console(0)
    if thresholds.get("embedder") is None and settings is not None:
        thresholds["embedder"] = settings.embedder
    t = Thresholds.from_options(**thresholds)
    _check_args(mode, fan_in, min_support, batch_size, name)
    base_dir = Path(base_skill) if base_skill else None
    base = load_skill(base_dir) if base_dir else None

    con = _connect(lake)
    facts = _read_facts(con, lake, where, analyses, console)
    if base is not None:
        _warn_unplaced(facts, base, console)
    sources = facts["source"].drop_nulls().unique().to_list()
    out, name = _resolve_out(out_dir, name, base, sources, console)
    check_target(out, base_dir)

    try:
        embedder = get_embedder(
            t.embedder,
            settings=settings if isinstance(settings, ModelSettings) else None,
            lake=lake,
        )
    except ValueError as exc:
        raise SettingsError(f"--embedder: {exc}") from None
    models = Models.of(settings, lake, console)
    with closing(models), writer_lock(out):
        for done in recover(out):
            console.warn(done)
        base_bytes = b"".join(
            k.encode() + v for k, v in sorted((base.render() if base else {}).items())
        )
        settings_json = {
            "mode": mode,
            "fan_in": fan_in,
            "min_support": min_support,
            "where": where,
            "analyses": analyses,
            "name": name,
            "batch_size": batch_size if mode == "sequential" else None,
            "model": models.model,
            **models.identity(mode, t.summary_sample),
            "thresholds": t.as_dict(),
            "base_skill_sha256": hashlib.sha256(base_bytes).hexdigest() if base else None,
        }
        run_id = digest("consolidate", _lessons_digest(facts), settings_json)
        with_model = f" with {models.model}" if models.llm is not None else ""
        console.info(f"consolidating {facts.height:,} lessons ({mode}{with_model}), run {run_id}")

        start = _start_folder(base, name, facts, min_support)
        start.skill.frontmatter.setdefault("metadata", {})
        start.skill.frontmatter["metadata"] = dict(start.skill.frontmatter["metadata"] or {}) | {
            "distilled-by": "trace2skill",
            RUN_KEY: run_id,
        }
        layout = Layout.of(start, t, RunIndex.from_facts(facts), embedder)
        merger = models.merger(layout, name)
        common = dict(embedder=embedder, t=t, layout=layout, min_support=min_support, merger=merger)
        if mode == "parallel":
            summariser = models.summariser(t.summary_sample)
            outcome = run_parallel(con, facts, fan_in=fan_in, summariser=summariser, **common)
        else:
            editor = models.editor(layout, name)
            outcome = run_sequential(con, facts, batch_size=batch_size, editor=editor, **common)
        n_fallbacks, n_omitted = models.report(outcome, console)
        if base is None:  # a new skill says what its kept lessons cover
            covered = sorted({layout.heading(it.section) for it in outcome.items})
            start.skill.frontmatter["description"] = _description(facts, covered)

        clock = time.perf_counter()
        written, dropped = _apply(con, start, outcome, facts, console)
        files = written.folder.render()
        problems = lint_files(files, out, name, console)
        outcome.seconds["write"] = time.perf_counter() - clock

        summary = ConsolidateSummary(
            run_id=run_id, mode=mode, name=name, n_lessons=facts.height, lint=problems,
            out_dir=out if not problems else out.with_name(f"{out.name}.rejected"),
            n_fallbacks=n_fallbacks, n_omitted=n_omitted, **_counts(outcome, written, dropped),
            seconds=time.perf_counter() - started, stage_seconds=outcome.seconds,
            **_usage(models, embedder),
        )  # fmt: skip
        row = _row(summary, settings_json, base_dir, record_files(lake, files))
        # the rows first: a folder on view always names a run whose rows exist
        write_tables(lake, run_id, outcome, written, dropped, scope_rows(con, where, sources), row)
        if not export_folder:
            return summary
        try:
            exported = export(
                lake, run_id, out, propose_change=propose, since=since, console=console,
                resurface=RESURFACE if resurface is None else resurface, locked=True,
            )  # fmt: skip
        except ExportError as exc:
            raise ConsolidateError(str(exc)) from None
        summary.out_dir, summary.proposal = exported.out_dir, exported.proposal
        return summary
