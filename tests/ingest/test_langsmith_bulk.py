"""LangSmith bulk data export: Parquet rows read as the same runs as the JSON export.

``bulk_export`` writes runs (dicts as ``client.list_runs`` gives them) as the bulk export does:
one row per run with the documented columns, objects and lists as JSON text, times as Parquet
timestamps (naive UTC for ``format_version`` v1, UTC-aware for v2_beta). ``RUNS`` holds two
traces of a support agent on the SDK's OpenAI wrapper: one looks an order up and is judged
correct by feedback, the other's refund tool times out and the agent raises.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import formats
from pipeline.ingest.formats import ReadContext, langsmith
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"
SOLVED = "5a1e0c2d-0000-4000-8000-00000000000a"
CRASHED = "5a1e0c2d-0000-4000-8000-00000000000b"
PROJECT = "0d5c6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f"
JSON_COLUMNS = ("inputs", "outputs", "extra", "events", "tags", "feedback_stats",
                "parent_run_ids")  # fmt: skip
ID_COLUMNS = ("id", "tenant_id", "session_id", "trace_id", "parent_run_id",
              "reference_example_id")  # fmt: skip
TIME_COLUMNS = ("start_time", "end_time", "first_token_time")
BULK_COLUMNS = (*ID_COLUMNS, "parent_run_ids", "name", "run_type", "start_time", "end_time",
                "status", "is_root", "dotted_order", "trace_tier", "inputs", "outputs", "error",
                "extra", "events", "tags", "feedback_stats", "total_tokens", "prompt_tokens",
                "completion_tokens", "total_cost", "prompt_cost", "completion_cost",
                "first_token_time")  # fmt: skip
TRACE_START = {SOLVED: "10:00:00", CRASHED: "11:00:00"}
SYSTEM = {"role": "system", "content": "You are a support agent for an online shop."}


def _run(trace: str, n: int, parent: str | None, name: str, run_type: str, start: str,
         end: str, **fields) -> dict:  # fmt: skip
    run_id = trace if n == 0 else trace[:-3] + f"{n:02d}" + trace[-1]
    dotted = _segment(TRACE_START[trace], trace)
    if parent is not None:
        dotted += "." + _segment(start, run_id)
    return {
        "id": run_id, "name": name, "run_type": run_type, "trace_id": trace,
        "parent_run_id": parent, "dotted_order": dotted, "session_id": PROJECT,
        "start_time": f"2025-03-04T{start}", "end_time": f"2025-03-04T{end}",
        "status": "success", "error": None, "inputs": {}, "outputs": None,
        "extra": {"metadata": {}}, "tags": [], "feedback_stats": None,
        "reference_example_id": None, "prompt_tokens": None, "completion_tokens": None,
        **fields,
    }  # fmt: skip


def _segment(start: str, run_id: str) -> str:
    """A run's part of a ``dotted_order``: its start time and id."""
    return f"{dt.datetime.fromisoformat(f'2025-03-04T{start}'):%Y%m%dT%H%M%S%f}Z{run_id}"


def _call(call_id: str, name: str, args: dict) -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}  # fmt: skip


def _answer(message: dict, tokens: tuple[int, int]) -> dict:
    return {"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "message": message}],
            "usage_metadata": {"input_tokens": tokens[0], "output_tokens": tokens[1]}}  # fmt: skip


ASK_ORDER = {"role": "user", "content": "Where is my order A-12?"}
LOOKUP = {"role": "assistant", "content": None,
          "tool_calls": [_call("call_look", "lookup_order", {"order_id": "A-12"})]}  # fmt: skip
FOUND = {"role": "tool", "tool_call_id": "call_look", "content": "A-12: delivered 2025-03-01"}
ASK_REFUND = {"role": "user", "content": "Refund order B-7, it arrived broken."}
REFUND = {"role": "assistant", "content": "I will refund it.",
          "tool_calls": [_call("call_pay", "issue_refund", {"order_id": "B-7"})]}  # fmt: skip
TIMEOUT = "TimeoutError('payments API did not answer in 30s')"
RUNS = [
    _run(SOLVED, 0, None, "support_agent", "chain", "10:00:00", "10:00:04.500000",
         inputs={"question": ASK_ORDER["content"]},
         outputs={"answer": "Order A-12 was delivered on 1 March."},
         extra={"metadata": {"task_id": "order-status-12", "ls_run_depth": 0}},
         tags=["prod"], feedback_stats={
             "correctness": {"n": 1, "avg": 1.0, "values": {}},
             "tone": {"n": 1, "avg": None, "values": {"friendly": 1}}}),
    _run(SOLVED, 1, SOLVED, "ChatOpenAI", "llm", "10:00:00.100000", "10:00:01",
         inputs={"messages": [SYSTEM, ASK_ORDER], "model": "gpt-4o-mini"},
         outputs=_answer(LOOKUP, (52, 14))),
    _run(SOLVED, 2, SOLVED, "lookup_order", "tool", "10:00:01.100000", "10:00:01.400000",
         inputs={"order_id": "A-12"}, outputs={"output": FOUND["content"]}),
    _run(SOLVED, 3, SOLVED, "ChatOpenAI", "llm", "10:00:01.500000", "10:00:04.400000",
         inputs={"messages": [SYSTEM, ASK_ORDER, LOOKUP, FOUND], "model": "gpt-4o-mini"},
         outputs=_answer({"role": "assistant", "content": "Order A-12 was delivered on 1 March."},
                         (90, 12))),
    _run(CRASHED, 0, None, "support_agent", "chain", "11:00:00", "11:00:31",
         inputs={"question": ASK_REFUND["content"]}, status="error", error=TIMEOUT,
         extra={"metadata": {"task_id": "refund-7"}}),
    _run(CRASHED, 1, CRASHED, "ChatOpenAI", "llm", "11:00:00.100000", "11:00:00.900000",
         inputs={"messages": [SYSTEM, ASK_REFUND], "model": "gpt-4o-mini"},
         outputs=_answer(REFUND, (48, 20))),
    _run(CRASHED, 2, CRASHED, "issue_refund", "tool", "11:00:01", "11:00:31",
         inputs={"order_id": "B-7"}, status="error", error=TIMEOUT),
]  # fmt: skip


def _time(value) -> dt.datetime | None:
    if value is None:
        return None
    t = dt.datetime.fromisoformat(value)
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def bulk_export(runs: list[dict], path: Path, format_version: str = "v1") -> Path:
    """`runs` written as one Parquet file of a LangSmith bulk export."""
    aware = format_version == "v2_beta"
    rows = []
    for run in runs:
        row = {c: run.get(c) for c in BULK_COLUMNS}
        row["tenant_id"] = "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
        row["is_root"] = run.get("parent_run_id") is None
        chain = str(run.get("dotted_order") or "").split(".")[:-1]
        row["parent_run_ids"] = [part[-36:] for part in chain]
        row["trace_tier"] = "longlived"
        for c in JSON_COLUMNS:
            row[c] = None if row[c] is None else json.dumps(row[c])
        for c in TIME_COLUMNS:
            row[c] = _time(row[c])
        rows.append(row)
    stamp = pa.timestamp("ns", "UTC") if aware else pa.timestamp("us")
    types = {c: stamp if c in TIME_COLUMNS else pa.string() for c in BULK_COLUMNS}
    types.update(is_root=pa.bool_(), total_cost=pa.float64(), prompt_cost=pa.float64(),
                 completion_cost=pa.float64(), total_tokens=pa.int64(),
                 prompt_tokens=pa.int64(), completion_tokens=pa.int64())  # fmt: skip
    schema = pa.schema([(c, types[c]) for c in BULK_COLUMNS])
    if aware:
        for row in rows:
            for c in TIME_COLUMNS:
                row[c] = row[c] and row[c].replace(tzinfo=dt.UTC)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd")
    return path


def jsonl(runs: list[dict], path: Path) -> Path:
    """The same runs as the JSON export holds them, restricted to the bulk export's fields."""
    path.write_text("".join(json.dumps({k: r[k] for k in BULK_COLUMNS if k in r}) + "\n"
                            for r in runs))  # fmt: skip
    return path


def read(path: Path) -> list:
    return list(langsmith.read(RawFile.read(path), ReadContext()))


def same_runs(out: list) -> list[tuple]:
    """The runs read, without where in the file they were."""
    return [(r.native_id, r.task_id, r.model, r.agent, r.outcome, r.reward, r.steps, r.meta)
            for r in out if isinstance(r, Run)]  # fmt: skip


def kinds(steps: pl.DataFrame) -> list[str]:
    return [f"{r}:{k}" for r, k in steps.select("role", "kind").rows()]


@pytest.mark.parametrize("format_version", ["v1", "v2_beta"])
def test_parquet_and_json_of_the_same_runs_read_the_same(tmp_path: Path, format_version: str):
    from_json = read(jsonl(RUNS, tmp_path / "runs.jsonl"))
    from_parquet = read(bulk_export(RUNS, tmp_path / "runs.parquet", format_version))
    assert [r for r in from_parquet if isinstance(r, BadRecord)] == []
    assert len(same_runs(from_json)) == 2
    assert same_runs(from_parquet) == same_runs(from_json)


def test_the_json_fixture_exported_in_bulk_reads_the_same(tmp_path: Path):
    """LangChain-serialised messages, parallel calls and a retriever, through Parquet."""
    lines = (FIXTURES / "langsmith" / "runs.jsonl").read_text().splitlines()
    runs = [r for r in map(json.loads, lines) if "run_type" in r]  # no feedback in a bulk export
    from_json = same_runs(read(jsonl(runs, tmp_path / "runs.jsonl")))
    assert len(from_json) == 2 and sum(len(r[6]) for r in from_json) == 16
    assert same_runs(read(bulk_export(runs, tmp_path / "runs.parquet"))) == from_json


def test_bulk_export_ingested_runs_steps_tools_and_outcomes(lake: Lake, tmp_path: Path):
    day = tmp_path / "export" / f"session_id={PROJECT}" / "runs" / "year=2025" / "month=3" / "day=4"
    day.mkdir(parents=True)
    bulk_export(RUNS, day / "part-00000.zstd.parquet", "v2_beta")
    summary = ingest_paths(lake, [tmp_path / "export"])
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "langsmith"
    t = {r["native_id"]: r for r in lake.read("trajectories").iter_rows(named=True)}
    s = lake.read("steps")
    steps = {n: s.filter(pl.col("trajectory_id") == t[n]["trajectory_id"]).sort("step_idx")
             for n in t}  # fmt: skip
    assert sorted(t) == [SOLVED, CRASHED]

    solved = t[SOLVED]
    assert (solved["task_id"], solved["model"], solved["agent"]) == (
        "order-status-12", "gpt-4o-mini-2024-07-18", "support_agent",
    )  # fmt: skip
    assert (solved["outcome"], solved["reward"]) == ("success", 1.0)  # correctness in stats
    assert kinds(steps[SOLVED]) == ["system:message", "user:message", "assistant:tool_call",
                                    "tool:tool_result", "assistant:message"]  # fmt: skip
    call, result = steps[SOLVED].row(2, named=True), steps[SOLVED].row(3, named=True)
    assert (call["tool_name"], call["tool_call_id"]) == ("lookup_order", "call_look")
    assert json.loads(call["tool_args"]) == {"order_id": "A-12"}
    assert (result["content"], result["is_error"]) == ("A-12: delivered 2025-03-01", False)
    assert result["call_step_idx"] == call["step_idx"]
    meta = json.loads(solved["meta"])
    assert meta["feedback"] == {"correctness": 1.0, "tone": "friendly"}
    assert meta["usage"] == {"input_tokens": 142, "output_tokens": 26}
    assert (meta["duration_ms"], meta["session_id"], meta["tags"]) == (4500.0, PROJECT, ["prod"])

    crashed = t[CRASHED]
    assert (crashed["task_id"], crashed["outcome"], crashed["reward"]) == (
        "refund-7", "failure", None)  # no feedback: the root run's error decides  # fmt: skip
    assert kinds(steps[CRASHED]) == ["system:message", "user:message", "assistant:tool_call",
                                     "tool:tool_result"]  # fmt: skip
    refund = steps[CRASHED].row(3, named=True)
    assert (refund["tool_name"], refund["content"], refund["is_error"]) == (
        "issue_refund", TIMEOUT, True)  # fmt: skip
    assert json.loads(crashed["meta"])["error"] == TIMEOUT


def test_detected_from_columns_and_not_taken_for_other_parquet(tmp_path: Path):
    renamed = tmp_path / "runs.data"
    shutil.copy(bulk_export(RUNS, tmp_path / "runs.parquet"), renamed)
    assert formats.detect(RawFile.read(renamed)) == "langsmith"
    phoenix = RawFile.read(FIXTURES / "phoenix" / "phoenix-spans.parquet")
    assert formats.detect(phoenix) == "phoenix"
    steps = tmp_path / "steps.parquet"
    pq.write_table(pa.table({"trajectory_id": ["t1"], "role": ["user"], "content": ["hi"],
                             "id": ["s1"], "run_type": ["x"]}), steps)  # fmt: skip
    assert formats.detect(RawFile.read(steps)) == "parquet"  # our own steps table
    # Without inputs, outputs or trace ids the columns are not a run's (export_fields cut).
    few = tmp_path / "few.parquet"
    pq.write_table(pa.table({"id": ["r"], "run_type": ["llm"], "total_cost": [0.1]}), few)
    assert formats.detect(RawFile.read(few)) == "parquet"


def test_structs_and_maps_read_like_json_text(tmp_path: Path):
    """Another writer's columns: tags as a list, feedback_stats as a map, extra as a struct
    (whose fields every row has, empty where the run has none)."""
    rows = [{**r, "inputs": json.dumps(r["inputs"]), "outputs": json.dumps(r["outputs"]),
             "tags": ["prod"] if i == 0 else []} for i, r in enumerate(RUNS[:4])]  # fmt: skip
    kept = ("id", "name", "run_type", "trace_id", "parent_run_id", "dotted_order", "inputs",
            "outputs", "tags")  # fmt: skip
    table = pa.Table.from_pylist([{k: r[k] for k in kept} for r in rows])
    stat = pa.struct([("n", pa.int64()), ("avg", pa.float64())])
    stats = [[("correctness", {"n": 1, "avg": 1.0})], None, None, None]
    table = table.append_column("feedback_stats", pa.array(stats, pa.map_(pa.string(), stat)))
    extra = [{"metadata": {"task_id": "order-status-12", "ls_run_depth": 0}}] + [
        {"metadata": {"task_id": None, "ls_run_depth": None}}] * 3  # fmt: skip
    table = table.append_column("extra", pa.array(extra))
    pq.write_table(table, tmp_path / "structs.parquet")
    [run] = read(tmp_path / "structs.parquet")
    assert (run.task_id, run.outcome, run.reward) == ("order-status-12", "success", 1.0)
    assert run.meta["tags"] == ["prod"] and len(run.steps) == 5


def test_a_row_with_broken_json_is_a_bad_record_and_the_rest_read(lake: Lake, tmp_path: Path):
    broken = {**RUNS[4], "id": "5a1e0c2d-0000-4000-8000-0000000000ff", "trace_id": "t-9",
              "parent_run_id": None, "dotted_order": None}  # fmt: skip
    path = bulk_export([*RUNS, broken], tmp_path / "runs.parquet")
    table = pq.read_table(path)
    inputs = table.column("inputs").to_pylist()
    inputs[-1] = '{"question": "Refund'
    pq.write_table(table.set_column(table.schema.get_field_index("inputs"), "inputs",
                                    pa.array(inputs)), path)  # fmt: skip
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    assert sorted(lake.read("trajectories")["native_id"]) == [SOLVED, CRASHED]
    [error] = summary.errors
    assert error.record == f"row {len(RUNS)}"
    assert error.error.startswith(f"run {broken['id']}: 'inputs' is not readable JSON")
