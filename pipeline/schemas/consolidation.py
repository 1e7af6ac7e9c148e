"""Tables written by consolidate: clusters, the merge tree, the skill's provenance, the drops.

Every table carries `run_id` (a digest of the input lessons and the consolidation settings) and
is partitioned by it, so several consolidations (parallel vs sequential, other thresholds) sit side
by side and a rerun of the same one replaces its own rows.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.schemas.registry import register
from pipeline.schemas.trajectory import Strict


@register("consolidations", partition_by=("run_id",))
class Consolidations(pa.DataFrameModel):
    """One row per consolidation run: its settings, inputs and result."""

    run_id: str = pa.Field(description="digest of the input lesson ids and the settings")
    mode: str = pa.Field(
        isin=["parallel", "sequential"], description="merge tree or one batch at a time"
    )
    model: str = pa.Field(description="model that summarised and merged, 'offline' for extractive")
    settings: str = pa.Field(description="JSON: fan_in, min_support, thresholds, batch size, ...")
    base_skill: str = pa.Field(
        nullable=True, description="path of the skill deepened; null when created from empty"
    )
    out_dir: str = pa.Field(description="where the skill folder was written")
    n_lessons: int = pa.Field(ge=0, description="lessons read")
    n_clusters: int = pa.Field(ge=0, description="clusters formed")
    n_kept: int = pa.Field(ge=0, description="clusters that passed the support filter")
    n_skill_lines: int = pa.Field(
        ge=0, description="statements in the written skill that came from lessons"
    )
    n_calls: int = pa.Field(
        ge=0, description="model calls sent to the server, embeddings included (0 offline)"
    )
    tokens_in: int = pa.Field(ge=0, description="prompt tokens")
    tokens_out: int = pa.Field(ge=0, description="completion tokens")
    cache_hits: int = pa.Field(
        ge=0, nullable=True, description="model requests answered from llm_calls instead"
    )
    cost_usd: float = pa.Field(ge=0, nullable=True, description="cost of the model calls")
    n_fallbacks: int = pa.Field(
        ge=0,
        nullable=True,
        description="clusters summarised extractively, and merge steps done offline, because the "
        "model's answer could not be used (see clusters.summary_fallback, merge_nodes.fallback)",
    )
    seconds: float = pa.Field(ge=0, description="wall time")
    n_dropped: int = pa.Field(
        ge=0, description="lessons that did not reach the skill (see dropped)"
    )
    n_nodes: int = pa.Field(
        ge=0, description="merge nodes (parallel) or batch edits (sequential): the merge steps"
    )
    n_ops: int = pa.Field(
        ge=0,
        description="edits made to the skill: ops of the final patch (parallel), or ops over every batch edit (sequential)",
    )
    lint_ok: bool = pa.Field(description="the written folder passed lint")
    skill_files_id: str = pa.Field(
        nullable=True,
        description="the folder it wrote, in skill_files (export reads it from there); null "
        "for runs made before folders were kept",
    )
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when")

    class Config(Strict):
        pass


@register("clusters", partition_by=("run_id",))
class Clusters(pa.DataFrameModel):
    """One row per cluster of lessons (after exact, near-duplicate and semantic grouping)."""

    run_id: str = pa.Field(description="consolidation run")
    cluster_id: str = pa.Field(description="digest of the member lesson ids")
    target_section: str = pa.Field(nullable=True, description="section its lessons target")
    kind: str = pa.Field(description="dominant lesson kind")
    medoid_lesson_id: str = pa.Field(description="member most similar to the others")
    title: str = pa.Field(
        description="consolidated lesson title (model summary, or the medoid's offline)"
    )
    content: str = pa.Field(description="consolidated lesson text")
    cited_lesson_ids: pl.List(pl.String) = pa.Field(
        description="member lessons the summary draws on (checked to be members)"
    )
    summariser: str = pa.Field(
        nullable=True, description="model that wrote title and content, or 'offline' (extractive)"
    )
    summary_fallback: str = pa.Field(
        nullable=True,
        description="why the model's summary was not used and the extractive one stands in",
    )
    summary_call_key: str = pa.Field(
        nullable=True, description="key in llm_calls of the (last) summary call"
    )
    n_lessons: int = pa.Field(ge=1, description="member lessons")
    n_trajectories: int = pa.Field(ge=0, description="distinct trajectories")
    n_tasks: int = pa.Field(ge=0, description="distinct tasks")
    n_failures: int = pa.Field(ge=0, description="distinct failed trajectories")
    n_successes: int = pa.Field(ge=0, description="distinct successful trajectories")
    n_models: int = pa.Field(ge=0, description="distinct agent models")
    n_analysts: int = pa.Field(ge=0, description="distinct analysts")
    kept: bool = pa.Field(description="passed --min-support")

    class Config(Strict):
        pass


@register("cluster_members", partition_by=("run_id",))
class ClusterMembers(pa.DataFrameModel):
    """One row per lesson per run: which cluster it joined, through which stage, how similar."""

    run_id: str = pa.Field(description="consolidation run")
    lesson_id: str = pa.Field(description="lesson")
    cluster_id: str = pa.Field(description="final cluster")
    stage: str = pa.Field(
        isin=["exact", "near", "semantic", "model", "representative", "singleton"],
        description="grouping step that joined it to its representative ('representative': the cluster's own root; 'singleton': alone in its cluster; 'model': joined by the model in a sequential edit)",
    )
    representative_lesson_id: str = pa.Field(
        description="lesson it was deduplicated into (itself for representatives)"
    )
    similarity: float = pa.Field(
        description="similarity to the representative (1.0 exact; Jaccard for near; cosine for semantic)"
    )

    class Config(Strict):
        pass


@register("merge_nodes", partition_by=("run_id",))
class MergeNodes(pa.DataFrameModel):
    """One row per node of the merge tree (level 0 = per-cluster summaries merged in batches)."""

    run_id: str = pa.Field(description="consolidation run")
    node_id: str = pa.Field(description="digest of the node's input ids and level")
    level: int = pa.Field(ge=0, description="depth from the leaves")
    section: str = pa.Field(
        nullable=True, description="target section of its inputs, when they share one"
    )
    n_inputs: int = pa.Field(ge=1, description="inputs merged")
    patch: str = pa.Field(description="JSON list of patch ops it produced")
    conflicts: str = pa.Field(description="JSON list of conflicts found and how they were resolved")
    model: str = pa.Field(description="model, or 'offline'")
    llm_call_key: str = pa.Field(nullable=True, description="key in llm_calls of the merge call")
    repair_call_key: str = pa.Field(
        nullable=True,
        description="key in llm_calls of the re-ask naming the input ids the first answer left out",
    )
    fallback: str = pa.Field(
        nullable=True,
        description="what the model's answer could not do and code did instead (offline merge "
        "of the node or of the inputs it omitted), and why",
    )
    n_omitted: int = pa.Field(
        ge=0, nullable=True, description="inputs the model left out even after the re-ask"
    )

    class Config(Strict):
        pass


@register("merge_edges", partition_by=("run_id",))
class MergeEdges(pa.DataFrameModel):
    """One row per input of a merge node: carried into its output, or dropped with a reason."""

    run_id: str = pa.Field(description="consolidation run")
    parent_node_id: str = pa.Field(description="merge node")
    child_id: str = pa.Field(
        description="cluster_id (level 0) or node_id (higher levels); lesson_id or node_id in sequential runs"
    )
    child_kind: str = pa.Field(isin=["cluster", "node", "lesson"], description="what the child is")
    carried: bool = pa.Field(description="its content reached the node's output")
    reason: str = pa.Field(nullable=True, description="why not, when not carried")
    llm_call_key: str = pa.Field(
        nullable=True, description="key in llm_calls of the model answer that decided it"
    )

    class Config(Strict):
        pass


@register("patch_ops", partition_by=("run_id",))
class PatchOps(pa.DataFrameModel):
    """One row per edit of the final patch, with what applying it did."""

    run_id: str = pa.Field(description="consolidation run")
    op_id: str = pa.Field(description="digest of the op")
    seq: int = pa.Field(ge=0, description="order of application")
    op: str = pa.Field(
        description="add_section / append / replace / insert_after / insert_before / delete_section / create_file / delete_file"
    )
    file: str = pa.Field(description="path inside the skill folder")
    section: str = pa.Field(nullable=True, description="heading the op targets")
    anchor: str = pa.Field(nullable=True, description="text the op must find")
    text: str = pa.Field(nullable=True, description="text it inserts")
    cluster_ids: pl.List(pl.String) = pa.Field(description="clusters behind it")
    status: str = pa.Field(
        isin=["applied", "anchor_missing", "rejected"], description="what happened"
    )
    message: str = pa.Field(nullable=True, description="why not applied")

    class Config(Strict):
        pass


@register("skill_lines", partition_by=("run_id",))
class SkillLines(pa.DataFrameModel):
    """One row per statement of the written skill (line of SKILL.md or of a reference file)."""

    run_id: str = pa.Field(description="consolidation run")
    file: str = pa.Field(description="SKILL.md or references/<name>.md")
    line_no: int = pa.Field(ge=1, description="1-based line in that file")
    section: str = pa.Field(nullable=True, description="heading it sits under")
    text: str = pa.Field(description="the statement")
    origin: str = pa.Field(
        isin=["base", "added", "revised"],
        description="from the base skill, or added or revised by this run",
    )
    item_id: str = pa.Field(
        nullable=True,
        description="consolidated statement the line belongs to (its SKILL.md bullet and its reference entry share it)",
    )
    cluster_ids: pl.List(pl.String) = pa.Field(
        description="clusters behind it (empty for base lines)"
    )
    lesson_ids: pl.List(pl.String) = pa.Field(description="lessons behind it")
    merge_node_id: str = pa.Field(nullable=True, description="merge node that emitted it")
    n_trajectories: int = pa.Field(ge=0, description="distinct trajectories behind it")
    n_tasks: int = pa.Field(ge=0, description="distinct tasks")
    n_failures: int = pa.Field(ge=0, description="distinct failed runs")
    n_successes: int = pa.Field(ge=0, description="distinct successful runs")

    class Config(Strict):
        pass


@register("consolidation_scope", partition_by=("run_id",))
class ConsolidationScope(pa.DataFrameModel):
    """One row per consolidation run and trajectory in its scope, as it was when the run was made."""

    run_id: str = pa.Field(description="consolidation run")
    trajectory_id: str = pa.Field(description="a run it was built from")
    scope: str = pa.Field(
        isin=["where", "sources", "lake"],
        description="how: its --where selects the run; its --where names lesson columns, so "
        "every run of the sources it read; no --where, every run of the lake",
    )

    class Config(Strict):
        pass


@register("dropped", partition_by=("run_id",))
class Dropped(pa.DataFrameModel):
    """One row per lesson that did not reach the skill: where and why."""

    run_id: str = pa.Field(description="consolidation run")
    lesson_id: str = pa.Field(description="lesson")
    cluster_id: str = pa.Field(nullable=True, description="its cluster")
    stage: str = pa.Field(
        isin=["support", "summary", "merge", "apply", "lint", "review"],
        description="where it fell out (review: its statement was not accepted)",
    )
    reason: str = pa.Field(description="why")
    node_id: str = pa.Field(nullable=True, description="merge node that dropped it, if any")

    class Config(Strict):
        pass


@register("skill_versions", partition_by=("version_id",))
class SkillVersions(pa.DataFrameModel):
    """One row per version of a skill folder a consolidation published (its content, once)."""

    version_id: str = pa.Field(
        description="digest of the folder's files (sorted relative paths and their sha256)"
    )
    parent_version_id: str = pa.Field(
        nullable=True, description="version live at `out` before this one; null for the first"
    )
    run_id: str = pa.Field(
        nullable=True,
        description="consolidation that wrote it (from its SKILL.md metadata for a folder found "
        "at `out` unrecorded; null when that names none)",
    )
    skill_name: str = pa.Field(description="the skill's name (its folder's name)")
    out: str = pa.Field(description="the skill folder path as given to consolidate")
    created_at: pl.Datetime("us", "UTC") = pa.Field(
        description="when it was published (a found folder: when its SKILL.md was written)"
    )
    created_by: str = pa.Field(
        nullable=True,
        description="user@host that published it, or T2S_ACTOR; null for a folder found at `out`",
    )
    n_statements: int = pa.Field(
        ge=0, description="statements: lines sharing a lesson-backed item, and base-skill lines"
    )
    n_files: int = pa.Field(ge=1, description="files in the folder")

    class Config(Strict):
        pass


@register("skill_files", partition_by=("version_id",))
class SkillFiles(pa.DataFrameModel):
    """One row per version of a skill folder and file in it: the file's text, to read it back."""

    version_id: str = pa.Field(description="skill version (see skill_versions)")
    file: str = pa.Field(description="path relative to the skill folder, '/' separated")
    text: str = pa.Field(
        description="the file's content (UTF-8; other bytes decoded with replacement)"
    )
    data: pl.Binary = pa.Field(
        nullable=True, description="the file's bytes when they are not UTF-8 text; else null"
    )
    digest: str = pa.Field(description="sha256 of the file's bytes")

    class Config(Strict):
        pass


EDIT_KINDS = ["added", "changed", "removed"]


@register("proposals", partition_by=("proposal_id",))
class Proposals(pa.DataFrameModel):
    """One row per proposal: a consolidation's skill set against the version in use, for review."""

    proposal_id: str = pa.Field(description="digest of the base version, the run and its edits")
    out: str = pa.Field(description="the skill folder the proposal would change")
    skill_name: str = pa.Field(description="the skill's name")
    base_version_id: str = pa.Field(
        nullable=True, description="version in use at `out` when proposed; null: none yet"
    )
    against_files_id: str = pa.Field(
        nullable=True,
        description="files the edits are read against (skill_files): the base version's, or "
        "the base skill's when nothing was live; null: neither",
    )
    candidate_version_id: str = pa.Field(
        description="the folder the consolidation wrote, every edit in (files in skill_files)"
    )
    proposed_version_id: str = pa.Field(
        description="the folder proposed: the candidate without the edits held back"
    )
    run_id: str = pa.Field(description="consolidation run that wrote the candidate")
    since: pl.Datetime("us", "UTC") = pa.Field(
        nullable=True, description="runs ingested after this are new (distill --since)"
    )
    n_new_runs: int = pa.Field(ge=0, description="runs ingested after `since` (0 without)")
    n_edits: int = pa.Field(ge=0, description="statement edits proposed")
    n_held: int = pa.Field(ge=0, description="edits held back by earlier rejections")
    path: str = pa.Field(description="folder holding the proposed skill, its diff and review file")
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when")
    created_by: str = pa.Field(description="user@host, or T2S_ACTOR")

    class Config(Strict):
        pass


@register("proposal_edits", partition_by=("proposal_id",))
class ProposalEdits(pa.DataFrameModel):
    """One row per statement edit of a proposal, with its evidence and any earlier decision."""

    proposal_id: str = pa.Field(description="proposal")
    edit_id: str = pa.Field(description="e1, e2, ... in file and line order")
    kind: str = pa.Field(isin=EDIT_KINDS, description="added, changed or removed")
    section: str = pa.Field(nullable=True, description="heading it sits under")
    file: str = pa.Field(description="file of the statement shown (the new one, else the old)")
    text: str = pa.Field(description="the statement proposed (removed: the one it would remove)")
    old_text: str = pa.Field(nullable=True, description="the statement it replaces (changed)")
    old_key: str = pa.Field(nullable=True, description="statement key in the base version")
    new_key: str = pa.Field(nullable=True, description="statement key in the candidate")
    lesson_ids: pl.List(pl.String) = pa.Field(description="lessons behind the statement shown")
    n_trajectories: int = pa.Field(ge=0, description="distinct runs behind it")
    n_tasks: int = pa.Field(ge=0, description="distinct tasks")
    n_failures: int = pa.Field(ge=0, description="distinct failed runs")
    n_successes: int = pa.Field(ge=0, description="distinct successful runs")
    old_n_trajectories: int = pa.Field(
        nullable=True, description="runs behind the statement it replaces or removes"
    )
    n_new_runs: int = pa.Field(ge=0, description="of its runs, those ingested after `since`")
    held_by: str = pa.Field(
        nullable=True, description="decision that holds it back (rejected before, evidence short)"
    )
    note: str = pa.Field(nullable=True, description="an earlier decision on the same statement")

    class Config(Strict):
        pass


@register("decisions", partition_by=("proposal_id",))
class Decisions(pa.DataFrameModel):
    """One row per reviewed edit: accepted or rejected, by whom, why, on what evidence."""

    decision_id: str = pa.Field(description="digest of the proposal and edit")
    proposal_id: str = pa.Field(description="proposal reviewed")
    edit_id: str = pa.Field(description="edit of that proposal")
    kind: str = pa.Field(isin=EDIT_KINDS, description="added, changed or removed")
    section: str = pa.Field(nullable=True, description="heading it sits under")
    text: str = pa.Field(description="the statement (removed: the one it would remove)")
    old_text: str = pa.Field(nullable=True, description="the statement it replaces (changed)")
    lesson_ids: pl.List(pl.String) = pa.Field(description="lessons behind it when decided")
    n_trajectories: int = pa.Field(ge=0, description="distinct runs behind it when decided")
    verdict: str = pa.Field(isin=["accept", "reject"], description="accept or reject")
    reason: str = pa.Field(nullable=True, description="why, as the reviewer wrote it")
    decided_by: str = pa.Field(description="user@host, or T2S_ACTOR")
    decided_at: pl.Datetime("us", "UTC") = pa.Field(description="when")
    version_id: str = pa.Field(description="the version the review published")

    class Config(Strict):
        pass
