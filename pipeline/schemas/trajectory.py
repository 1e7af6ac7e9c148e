"""Tables written by ingest: trajectories, steps, and the ingest bookkeeping."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.schemas.registry import register

OUTCOMES = ["success", "failure", "unknown"]
ROLES = ["system", "user", "assistant", "tool"]
STEP_KINDS = ["message", "tool_call", "tool_result"]
UTC = pl.Datetime("us", "UTC")


class Strict:
    strict = True
    coerce = True


@register("trajectories", partition_by=("source",))
class Trajectories(pa.DataFrameModel):
    """One row per trajectory (one run of an agent on one task)."""

    trajectory_id: str = pa.Field(
        unique=True, description="content hash of source, native id and steps"
    )
    source: str = pa.Field(
        str_matches=r"^[A-Za-z0-9._-]+$",
        description="dataset the run came from; the lake's partition key",
    )
    native_id: str = pa.Field(
        nullable=True, description="the run's own id in its source file, if it has one"
    )
    task_id: str = pa.Field(
        nullable=True, description="task the agent attempted; runs of one task share it"
    )
    model: str = pa.Field(
        nullable=True, description="model that drove the agent, where the source says"
    )
    agent: str = pa.Field(
        nullable=True,
        description="agent framework or scaffold (tau-bench, swe-agent, claude-code, react, ...)",
    )
    outcome: str = pa.Field(isin=OUTCOMES, description="success / failure / unknown")
    outcome_origin: str = pa.Field(
        isin=["source", "labels", "none"], description="where the outcome came from"
    )
    reward: float = pa.Field(
        nullable=True, description="numeric reward where the source or labels give one"
    )
    n_steps: int = pa.Field(ge=0, description="number of rows of this run in steps")
    meta: str = pa.Field(
        description="JSON object; key 'grader' holds ground truth the agent never saw (gold actions, reward breakdown, hidden goal)"
    )
    file: str = pa.Field(description="raw file the run was read from")
    record: str = pa.Field(description="where in that file: line number, list index or section")
    file_sha256: str = pa.Field(description="sha256 of the raw file at ingest")
    format: str = pa.Field(description="input format adapter that read it")
    ingested_at: pl.Datetime("us", "UTC") = pa.Field(description="when this row was written")

    class Config(Strict):
        pass


@register("steps", partition_by=("source",))
class Steps(pa.DataFrameModel):
    """One row per step of a trajectory: a message, one tool call, or one tool result."""

    trajectory_id: str = pa.Field(description="run this step belongs to")
    source: str = pa.Field(description="partition key, as in trajectories")
    step_idx: int = pa.Field(
        ge=0, description="0-based position in the run; lessons cite these as evidence"
    )
    message_idx: int = pa.Field(
        ge=0,
        description="index of the source message the step came from (one message may hold several tool calls)",
    )
    role: str = pa.Field(isin=ROLES, description="system / user / assistant / tool")
    kind: str = pa.Field(isin=STEP_KINDS, description="message / tool_call / tool_result")
    content: str = pa.Field(
        nullable=True,
        description="text of the message, the call's accompanying text, or the tool's output",
    )
    tool_name: str = pa.Field(nullable=True, description="tool called or answering")
    tool_args: str = pa.Field(
        nullable=True, description="JSON of the call's arguments (tool_call rows)"
    )
    tool_call_id: str = pa.Field(
        nullable=True,
        description="links a call to its result; made unique within the run when the source reuses ids",
    )
    call_step_idx: int = pa.Field(
        nullable=True, description="on a tool_result: step_idx of the call it answers"
    )
    is_error: bool = pa.Field(
        description="tool result that reports an error (source flag, non-zero exit, or an error message)"
    )
    content_chars: int = pa.Field(ge=0, description="length of content in characters")
    args_chars: int = pa.Field(ge=0, description="length of tool_args in characters")

    class Config(Strict):
        pass


@register("ingest_files")
class IngestFiles(pa.DataFrameModel):
    """One row per raw file per ingest: what was read, with what, and what became of it."""

    file_key: str = pa.Field(
        description="digest of the file's resolved path and the source; names its parts"
    )
    file: str = pa.Field(description="path as given")
    resolved_path: str = pa.Field(
        description="absolute path of the file; finds its old parts when it moves to another source"
    )
    file_sha256: str = pa.Field(description="sha256 of the bytes read")
    size_bytes: int = pa.Field(ge=0, description="file size")
    source: str = pa.Field(description="source partition it was written to")
    format: str = pa.Field(description="adapter used")
    settings_digest: str = pa.Field(
        description="digest of the adapter version and options (format, labels, mapping, model) the file was read with; a change re-reads it"
    )
    status: str = pa.Field(
        isin=["ingested", "unchanged", "replaced", "failed"],
        description="what this ingest did with the file",
    )
    n_trajectories: int = pa.Field(ge=0, description="trajectories read from it")
    n_steps: int = pa.Field(ge=0, description="steps read from it")
    n_skipped: int = pa.Field(ge=0, description="records skipped as bad input")
    n_duplicates: int = pa.Field(
        ge=0, description="records dropped as repeats of a run already read (reprints, copies)"
    )
    ingested_at: pl.Datetime("us", "UTC") = pa.Field(description="when")

    class Config(Strict):
        pass


@register("ingest_errors")
class IngestErrors(pa.DataFrameModel):
    """One row per bad input record (or unreadable file) seen by an ingest."""

    file: str = pa.Field(description="raw file")
    file_sha256: str = pa.Field(
        nullable=True, description="sha256 of the file, when it could be read"
    )
    record: str = pa.Field(description="line number, list index, section or '-' for the whole file")
    format: str = pa.Field(nullable=True, description="adapter that was reading it")
    error: str = pa.Field(description="what was wrong, in words a user can act on")
    ingested_at: pl.Datetime("us", "UTC") = pa.Field(description="when")

    class Config(Strict):
        pass
