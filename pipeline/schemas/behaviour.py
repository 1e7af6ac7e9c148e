"""Tables analyse derives from the runs before its map: what each call did, and which behaviours
go with success.

`actions` splits every tool call into the programs it ran (a shell command) or the file operation
it made (an editor tool), each with a family; a call of any other tool is one action whose family
is the tool's name. `contrasts` compares the success rate of runs with and without each behaviour
feature computed from the actions (`sql/behaviour_run_features.sql`).
"""

from __future__ import annotations

import pandera.polars as pa

from pipeline.schemas.registry import register
from pipeline.schemas.trajectory import Strict

ESTIMATES = ["pooled", "within_task"]


@register("actions", partition_by=("source",))
class Actions(pa.DataFrameModel):
    """One row per action of a tool call: each program a shell command ran, an editor tool's file
    operation, or the call itself for any other tool."""

    trajectory_id: str = pa.Field(description="run the call belongs to")
    source: str = pa.Field(description="partition key, as in trajectories")
    call_step_idx: int = pa.Field(ge=0, description="step_idx of the tool call")
    action_idx: int = pa.Field(ge=0, description="0-based position of the action in its call")
    tool_name: str = pa.Field(description="tool called")
    program: str = pa.Field(
        description="program run ('pytest', 'sed', 'git'), the editor tool, or the tool's name"
    )
    subcommand: str = pa.Field(
        nullable=True, description="'diff' of git diff, 'str_replace' of an editor tool, ..."
    )
    family: str = pa.Field(
        description="test / script / search / view / edit / create / vcs / install / navigate / "
        "submit / other for commands and editor tools; the tool's name for any other tool"
    )
    path: str = pa.Field(nullable=True, description="file the action reads, writes or runs")
    is_test_path: bool = pa.Field(description="path is a test file or folder")
    is_error: bool = pa.Field(description="the call's result reports an error")
    text: str = pa.Field(nullable=True, description="the action's part of the command, shortened")
    parser_version: str = pa.Field(description="version of the command parser that wrote the row")

    class Config(Strict):
        pass


@register("contrasts")
class Contrasts(pa.DataFrameModel):
    """One row per source and behaviour feature: the success rate of runs with and without it,
    the difference with its interval, and whether it is a finding."""

    source: str = pa.Field(description="source the runs come from")
    feature: str = pa.Field(description="feature name, e.g. tested_after_last_edit, used:search")
    phrase: str = pa.Field(description="the behaviour in words: 're-ran the tests after ...'")
    equivalent: str = pa.Field(
        nullable=True,
        description="other features that split the runs exactly alike, measured as this one",
    )
    n_with: int = pa.Field(ge=0, description="runs with the feature (outcome known)")
    success_with: int = pa.Field(ge=0, description="of which successful")
    n_without: int = pa.Field(ge=0, description="runs the feature applies to, without it")
    success_without: int = pa.Field(ge=0, description="of which successful")
    rate_with: float = pa.Field(nullable=True, description="success_with / n_with")
    rate_without: float = pa.Field(nullable=True, description="success_without / n_without")
    diff: float = pa.Field(nullable=True, description="rate_with - rate_without")
    ci_low: float = pa.Field(nullable=True, description="Newcombe 95% interval of diff, lower")
    ci_high: float = pa.Field(nullable=True, description="Newcombe 95% interval of diff, upper")
    p_value: float = pa.Field(nullable=True, description="Fisher's exact test, two-sided")
    n_tasks: int = pa.Field(ge=0, description="tasks with runs both with and without the feature")
    within_diff: float = pa.Field(
        nullable=True, description="Mantel-Haenszel difference within those tasks"
    )
    within_ci_low: float = pa.Field(nullable=True, description="its 95% interval (Sato), lower")
    within_ci_high: float = pa.Field(nullable=True, description="its 95% interval, upper")
    within_p_value: float = pa.Field(
        nullable=True, description="Cochran-Mantel-Haenszel test, continuity-corrected"
    )
    estimate: str = pa.Field(
        isin=ESTIMATES,
        description="which estimate decides: within_task where tasks have several runs",
    )
    q_value: float = pa.Field(
        nullable=True,
        description="Benjamini-Hochberg adjusted p of the deciding test, over the source's features",
    )
    fdr: float = pa.Field(ge=0, le=1, description="the false-discovery rate findings are held to")
    is_finding: bool = pa.Field(description="q_value <= fdr and the deciding interval excludes 0")

    class Config(Strict):
        pass
