"""What each stage reads from the lake and writes to it: the contract between the stages.

Stages talk only through the lake, so these declarations are the whole interface: a stage may
read the tables it names and write those it names, nothing else (`tests/test_stages.py` runs the
stages on the demo data and fails when one writes a table it does not declare, and when a
registered table has no writer). The tables reference and `trace2skill sql`'s table list say who
writes each table from here. `MODEL_LAYER` is what any stage that calls a model writes besides
its own tables (the model cache and log, and what it learned of the servers).
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_LAYER = ("llm_calls", "model_endpoints")
# rollout and eval play episodes alike: what they read and write is one list
EPISODE_READS = ("trajectories", "eval_results")
EPISODE_WRITES = ("trajectories", "steps", "eval_results", "skill_usage", "eval_runs",
                  "eval_arms", "eval_comparisons")  # fmt: skip
# a consolidation run's tables: consolidate writes them, and so does review (a run of its own)
RUN_WRITES = ("consolidations", "clusters", "cluster_members", "merge_nodes", "merge_edges",
              "patch_ops", "skill_lines", "dropped", "consolidation_scope")  # fmt: skip


@dataclass(frozen=True)
class Stage:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    calls_models: bool = False  # writes MODEL_LAYER too when it does
    what: str = ""

    @property
    def all_writes(self) -> tuple[str, ...]:
        return self.writes + (MODEL_LAYER if self.calls_models else ())


STAGES = (
    Stage(
        "ingest",
        reads=("ingest_files",),
        writes=("trajectories", "steps", "ingest_files", "ingest_errors"),
        what="raw files in, one row per run and per step",
    ),
    Stage(
        "analyse",
        reads=("trajectories", "steps", "analyses", "actions"),
        writes=("analyses", "lessons", "actions", "contrasts"),
        calls_models=True,
        what="every run into lessons (the map), and the behaviour contrasts",
    ),
    Stage(
        "consolidate",
        reads=("lessons", "trajectories", "analyses"),
        writes=(*RUN_WRITES, "skill_files"),
        calls_models=True,
        what="lessons into one skill, with the evidence behind every line",
    ),
    Stage(
        "export",
        reads=(
            "consolidations",
            "skill_files",
            "skill_lines",
            "skill_versions",
            "decisions",
            "proposals",
            "lessons",
            "trajectories",
        ),  # fmt: skip
        writes=("skill_versions", "skill_files", "proposals", "proposal_edits"),
        what="a consolidation's folder published at OUT as a version, or proposed",
    ),
    Stage(
        "review",
        reads=(
            "proposals",
            "proposal_edits",
            "skill_files",
            "skill_lines",
            "skill_versions",
            "eval_arms",
            "eval_runs",
        ),  # fmt: skip
        writes=("decisions", "skill_versions", "skill_files", *RUN_WRITES),
        what="a proposal's edits decided; the accepted ones published, as a run of their own",
    ),
    Stage(
        "rollout",
        reads=EPISODE_READS,
        writes=EPISODE_WRITES,
        calls_models=True,
        what="an agent played on an environment's tasks, its runs into the lake",
    ),
    Stage(
        "eval",
        reads=EPISODE_READS,
        writes=EPISODE_WRITES,
        calls_models=True,
        what="skills against a baseline and the skill in use, paired by task",
    ),
)

BY_NAME = {s.name: s for s in STAGES}


def writers(table: str) -> list[str]:
    """The stages that write `table` (the model layer's tables: every stage that calls one)."""
    return [s.name for s in STAGES if table in s.all_writes]
