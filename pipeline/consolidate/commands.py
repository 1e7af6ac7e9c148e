"""The `trace2skill consolidate` command: options in, `consolidate()`, a summary out.

The model options are the shared ones (`pipeline.options.model_options`: --model, --base-url,
--api-key, --settings, the limits), resolved into `ModelSettings` by `resolve_model_settings`
(command line > settings file > environment > defaults)."""

from __future__ import annotations

import click

from pipeline.console import Console
from pipeline.consolidate.settings import (
    ANALYSES,
    BATCH_SIZE,
    FAN_IN,
    MIN_SUPPORT,
    SettingsError,
    Thresholds,
)
from pipeline.options import (
    lake_option,
    model_options,
    pass_console,
    propose_options,
    resolve_model_settings,
)
from pipeline.skill.folder import SkillError, SkillPathError


def user_errors() -> tuple[type[Exception], ...]:
    """What consolidation raises for a problem the user can fix (shown as one message)."""
    from pipeline.consolidate.run import ConsolidateError

    return (ConsolidateError, SettingsError, SkillError, SkillPathError)


D = Thresholds()


# The consolidation's own options, shared by `consolidate` and `distill` (the options the stages
# share, --lake, --base-skill, --where and the model's, are each command's).
CONSOLIDATE_OPTIONS = [
    click.option(
        "--name",
        default=None,
        help="Skill name (kebab-case), when --out is not given. Default: the base skill's name, "
        "else <source>-skill.",
    ),
    click.option(
        "--out",
        "out_dir",
        default=None,
        type=click.Path(file_okay=False),
        help="The skill folder to write; its name is the skill's name. Default: out/<name>.",
    ),
    click.option(
        "--mode",
        type=click.Choice(["parallel", "sequential"]),
        default="parallel",
        show_default=True,
        help="parallel: cluster everything, then a merge tree; sequential: edit the skill one batch at a time (baseline).",
    ),
    click.option(
        "--fan-in",
        default=FAN_IN,
        show_default=True,
        type=click.IntRange(min=2),
        help="Inputs per merge-tree node.",
    ),
    click.option(
        "--min-support",
        default=MIN_SUPPORT,
        show_default=True,
        type=click.IntRange(min=1),
        help="Distinct trajectories a cluster needs to reach the skill.",
    ),
    click.option(
        "--lessons-per-edit",
        "batch_size",
        default=BATCH_SIZE,
        show_default=True,
        type=click.IntRange(min=1),
        help="Lessons per edit in --mode sequential.",
    ),
    click.option(
        "--analyses",
        type=click.Choice(ANALYSES),
        default="latest",
        show_default=True,
        help="A run one analyst analysed under several settings (model, prompts, base skill): "
        "latest reads only the lessons of the latest settings; all reads every one's. Different "
        "analysts (the miner and a model) always add up.",
    ),
    click.option(
        "--near-threshold",
        type=float,
        default=D.near_threshold,
        show_default=True,
        help="Jaccard of title shingles for near duplicates.",
    ),
    click.option(
        "--semantic-threshold",
        type=float,
        default=D.semantic_threshold,
        show_default=True,
        help="Embedding cosine for semantic clusters.",
    ),
    click.option(
        "--embedder",
        default=None,
        help="lexical (hashed n-grams, no dependencies), local (all-MiniLM-L6-v2) or openai:<model>. "
        "Default: the settings file's embedder, else lexical.",
    ),
    click.option(
        "--shingle-size",
        type=int,
        default=D.shingle_size,
        show_default=True,
        help="Characters per MinHash shingle.",
    ),
    click.option(
        "--minhash-bands",
        type=int,
        default=D.minhash_bands,
        show_default=True,
        help="MinHash bands (near duplicates).",
    ),
    click.option(
        "--minhash-rows",
        type=int,
        default=D.minhash_rows,
        show_default=True,
        help="MinHash hashes per band.",
    ),
    click.option(
        "--lsh-bands",
        type=int,
        default=D.lsh_bands,
        show_default=True,
        help="Random-hyperplane LSH bands (semantic clusters).",
    ),
    click.option(
        "--lsh-rows",
        type=int,
        default=D.lsh_rows,
        show_default=True,
        help="Hyperplane bits per band.",
    ),
    click.option(
        "--max-bucket",
        type=int,
        default=D.max_bucket,
        show_default=True,
        help="LSH buckets larger than this pair members with a few pivots only.",
    ),
    click.option(
        "--bucket-pivots",
        type=int,
        default=D.bucket_pivots,
        show_default=True,
        help="Members of a capped bucket every other member is paired with.",
    ),
    click.option(
        "--anchor-threshold",
        type=float,
        default=D.anchor_threshold,
        show_default=True,
        help="Cosine a revising lesson needs to go under a base line.",
    ),
    click.option(
        "--max-section-items",
        type=int,
        default=D.max_section_items,
        show_default=True,
        help="Lessons per section in SKILL.md; the rest live in references/.",
    ),
    click.option(
        "--max-skill-lines",
        type=int,
        default=D.max_skill_lines,
        show_default=True,
        help="SKILL.md line budget.",
    ),
    click.option(
        "--summary-sample",
        type=int,
        default=D.summary_sample,
        show_default=True,
        help="With a model: members of a cluster shown to it (nearest the centroid first).",
    ),
]


def consolidate_options(f):
    for option in reversed(CONSOLIDATE_OPTIONS):
        f = option(f)
    return f


@click.command("consolidate")
@lake_option()
@click.option(
    "--base-skill",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Skill folder to deepen (its SKILL.md headings are the sections). Default: create a new skill.",
)
@click.option(
    "--where",
    default=None,
    metavar="SQL",
    help="Only lessons matching this SQL filter, e.g. \"source = 'tau-bench-airline'\" "
    "(columns: source, task_id, outcome, run_model, kind, section, tool_name, rule, analyst, ...).",
)
@consolidate_options
@propose_options
@model_options
@pass_console
def consolidate(
    console: Console,
    lake,
    propose,
    resurface,
    base_skill,
    name,
    out_dir,
    mode,
    fan_in,
    min_support,
    batch_size,
    where,
    analyses,
    model_overrides,
    **thresholds,
):
    """Consolidate the lake's lessons into one skill folder.

    \b
    Dedupes (exact, MinHash near-duplicates, embedding clusters), counts support, drops lessons
    seen in fewer than --min-support runs, writes one lesson per cluster, merges them in a tree
    (conflicts resolved by evidence) and applies the result to --base-skill or a new skill.
    Every line written is traced to its lessons in the skill_lines table.

    \b
    With --model (any OpenAI-compatible server), the model writes one lesson per cluster (citing
    its members, checked) and merges each node of the tree into a patch; every call is cached in
    llm_calls (a rerun makes none), and whatever the model cannot do (failed calls, refused
    answers, a spent --token-budget) is done offline and reported.

    \b
      trace2skill consolidate --lake lake --base-skill skill/ --out out/my-skill
      trace2skill consolidate --lake lake --model gpt-4o-mini --token-budget 2000000
      trace2skill consolidate --lake lake --model qwen3 --base-url http://localhost:8000/v1 \\
          --mode sequential --lessons-per-edit 50
    """
    from pipeline.consolidate.run import consolidate as run

    settings = resolve_model_settings(model_overrides)
    try:
        s = run(
            lake,
            base_skill=base_skill,
            name=name,
            out_dir=out_dir,
            fan_in=fan_in,
            min_support=min_support,
            mode=mode,
            batch_size=batch_size,
            where=where,
            analyses=analyses,
            settings=settings,
            console=console,
            propose=propose,
            resurface=resurface,
            **thresholds,
        )
    except user_errors() as exc:
        raise click.ClickException(str(exc)) from None
    show(console, s)
    from pipeline.skill.review_command import show_proposal

    show_proposal(console, s.proposal, lake)


def show(console: Console, s) -> None:
    """The summary table of a consolidation, and a warning for ops not applied."""
    ops = ", ".join(f"{n} {k}" for k, n in sorted(s.op_status.items()))
    console.table(
        f"consolidation {s.run_id} ({s.mode})",
        ["measure", "value"],
        [
            ("lessons", f"{s.n_lessons:,}"),
            ("clusters (kept)", f"{s.n_clusters:,} ({s.n_kept:,})"),
            ("lessons dropped", f"{s.n_dropped:,}"),
            ("merge nodes / conflicts", f"{s.n_nodes:,} / {s.n_conflicts:,}"),
            ("patch ops", ops or "none"),
            ("skill lines from lessons", f"{s.n_skill_lines:,}"),
            *_model_rows(s),
            ("lint", "ok" if s.lint_ok else f"{len(s.lint)} problem(s)"),
            ("seconds", f"{s.seconds:.1f}"),
            ("skill", str(s.out_dir)),
        ],
    )
    missing = s.op_status.get("anchor_missing", 0) + s.op_status.get("rejected", 0)
    if missing:
        console.warn(
            f"{missing} patch op(s) not applied: see the patch_ops table for run {s.run_id}"
        )


def _model_rows(s) -> list[tuple[str, str]]:
    if s.model == "offline":
        return []
    rows = [
        ("model", s.model),
        ("model calls (cache hits)", f"{s.n_calls:,} ({s.cache_hits:,})"),
        ("tokens in / out", f"{s.tokens_in:,} / {s.tokens_out:,}"),
        ("cost (USD)", f"{s.cost_usd:.4f}"),
        ("offline fallbacks", f"{s.n_fallbacks:,}"),
    ]
    if s.n_omitted:
        rows.append(("inputs the model omitted", f"{s.n_omitted:,}"))
    if s.budget_spent:
        rows.append(("budget", "spent: the rest was done offline"))
    return rows
