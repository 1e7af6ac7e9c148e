"""LangSmith run exports: one run per trace, steps from the run tree, outcome from feedback.

Fixtures (``fixtures/langsmith/``): ``runs.jsonl`` holds runs as ``client.list_runs`` gives them,
newest first, one per line: a LangGraph agent on ChatOpenAI (LangChain-serialised messages, a
tool that raised, two calls in parallel, ``feedback_stats`` on the root) and an SDK
``@traceable`` app with the OpenAI wrapper and a retriever, whose feedback records follow the
runs. ``run-tree.json`` is a run tree with nested ``child_runs`` (not in the order they ran),
times in epoch milliseconds and no ``dotted_order``, from the Anthropic wrapper.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest import formats
from pipeline.ingest.formats import ReadContext, langsmith
from pipeline.ingest.formats import langsmith_messages as lsm
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"
HERE = FIXTURES / "langsmith"
WEATHER = "1f0c3b7e-8a41-4d2e-b6c1-3f5a9e2d7c10"
SUPPORT = "7c2e9d41-5f3a-4b8c-a1d2-6e7f8a9b0c1d"
CODING = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def ingest(lake: Lake, path: Path, **kw):
    summary = ingest_paths(lake, [path], **kw)
    t = lake.read("trajectories")
    s = lake.read("steps")
    runs = {
        n: s.filter(pl.col("trajectory_id") == tid).sort("step_idx")
        for n, tid in t.select("native_id", "trajectory_id").rows()
    }
    by_id = {row["native_id"]: row for row in t.iter_rows(named=True)}
    return summary, by_id, runs


def kinds(steps: pl.DataFrame) -> list[str]:
    return [f"{r}:{k}" for r, k in steps.select("role", "kind").rows()]


def read(text: str, tmp_path: Path, name: str = "runs.jsonl") -> list:
    path = tmp_path / name
    path.write_text(text)
    return list(langsmith.read(RawFile.read(path), ReadContext()))


@pytest.mark.parametrize("name", ["runs.jsonl", "run-tree.json"])
def test_detected_from_content(tmp_path: Path, name: str):
    renamed = tmp_path / "export.data"
    shutil.copy(HERE / name, renamed)
    assert formats.detect(RawFile.read(renamed)) == "langsmith"


def test_other_formats_are_not_taken_for_langsmith():
    others = [p for p in FIXTURES.rglob("*") if p.is_file() and HERE not in p.parents]
    assert len(others) >= 10
    for path in others:
        raw = RawFile.read(path)
        assert not langsmith.sniff(formats.sample(raw), raw), path.name


def test_langgraph_agent_one_step_per_message_and_tool_runs_joined(lake: Lake):
    summary, t, runs = ingest(lake, HERE / "runs.jsonl")
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "langsmith"
    assert sorted(t) == sorted([WEATHER, SUPPORT])
    run = t[WEATHER]
    assert (run["task_id"], run["model"], run["agent"]) == (
        "weather-17", "gpt-4o-mini-2024-07-18", "LangGraph",
    )  # fmt: skip
    assert (run["outcome"], run["reward"]) == ("success", 1.0)  # correctness 1.0 in feedback_stats
    steps = runs[WEATHER]
    # Three model calls, each re-sending the history: every message is still one step.
    assert kinds(steps) == [
        "system:message", "user:message",
        "assistant:tool_call", "tool:tool_result",
        "assistant:tool_call", "assistant:tool_call", "tool:tool_result", "tool:tool_result",
        "assistant:message",
    ]  # fmt: skip
    calls = steps.filter(pl.col("kind") == "tool_call")
    assert calls["tool_name"].to_list() == ["get_weather", "get_weather", "get_forecast"]
    assert calls["tool_call_id"].to_list() == ["call_oslo", "call_bergen", "call_fc"]
    # LangChain records a tool's input as a Python repr: read back as arguments
    assert json.loads(calls["tool_args"][2]) == {"city": "Bergen", "days": 2}
    assert calls["content"].to_list() == [None, "Oslo done; checking Bergen.", None]
    results = steps.filter(pl.col("kind") == "tool_result")
    assert results["tool_call_id"].to_list() == ["call_oslo", "call_bergen", "call_fc"]
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    assert results["is_error"].to_list() == [False, True, False]  # the tool run that raised
    assert results["content"][1].startswith("ValueError('station offline: Bergen')")
    assert steps["content"][-1].startswith("Oslo: 12°C with light rain.")
    meta = json.loads(run["meta"])
    assert meta["usage"] == {"input_tokens": 510, "output_tokens": 94}
    assert meta["feedback"] == {"correctness": 1.0, "helpfulness": 0.75}
    assert meta["runs"] == 12 and meta["session_name"] == "weather-agent"


def test_traceable_app_with_retriever_and_feedback_records(lake: Lake):
    _, t, runs = ingest(lake, HERE / "runs.jsonl")
    run = t[SUPPORT]
    assert run["task_id"] == "e5c10a2b-3d4e-4f60-8a7b-9c0d1e2f3a4b"  # the dataset example
    assert run["model"] == "gpt-4o-mini-2024-07-18"  # the response's model, not the request's
    assert (run["outcome"], run["reward"]) == ("failure", 0.0)  # feedback record resolved = 0
    steps = runs[SUPPORT]
    assert kinds(steps) == [
        "assistant:tool_call", "tool:tool_result", "system:message", "user:message",
        "assistant:tool_call", "tool:tool_result", "assistant:message",
    ]  # fmt: skip
    assert steps["tool_name"][0] == "search_policies"
    assert json.loads(steps["tool_args"][0]) == {"query": "late delivery policy"}
    assert steps["content"][1] == (
        "Orders late by more than 5 days get a free refund.\n\nLost parcels are refunded in full."
    )
    assert json.loads(steps["tool_args"][4]) == {"order_id": "A-12"}
    assert steps["call_step_idx"][5] == 4 and steps["tool_call_id"][5] == "call_ord"
    meta = json.loads(run["meta"])
    assert meta["feedback"] == {"resolved": 0.0, "helpfulness": 0.8}
    assert meta["usage"] == {"input_tokens": 220, "output_tokens": 43}


def test_run_tree_with_nested_children_anthropic_blocks(lake: Lake):
    summary, t, runs = ingest(lake, HERE / "run-tree.json")
    assert summary.exit_code == EXIT_OK
    run = t[CODING]
    assert (run["task_id"], run["model"], run["agent"]) == (
        "sess-42", "claude-sonnet-4-20250514", "fix_tests",
    )  # the thread stands for the task when nothing else names it  # fmt: skip
    assert run["outcome"] == "success" and run["reward"] is None  # categorical value "pass"
    steps = runs[CODING]
    assert kinds(steps) == [
        "system:message", "user:message", "assistant:tool_call", "tool:tool_result",
        "assistant:tool_call", "tool:tool_result", "assistant:message",
    ]  # fmt: skip
    assert steps["content"][2] == "Let me run the tests first."
    assert steps["tool_call_id"].to_list()[2:6] == ["toolu_01", "toolu_01", "toolu_02", "toolu_02"]
    assert steps["call_step_idx"].to_list()[3::2][:2] == [2, 4]
    assert steps["content"][5] == "edited cart.py (1 line)"
    assert steps["is_error"].to_list() == [False] * 7  # "FAILED" test output is not a tool error


def test_bad_records_are_named_and_the_rest_read(lake: Lake, tmp_path: Path):
    lonely = {"id": "c0ffee00-0000-4000-8000-000000000001", "name": "summarise",
              "run_type": "chain", "trace_id": "c0ffee00-0000-4000-8000-000000000001",
              "inputs": {"text": "..."}, "outputs": {"summary": "..."}}  # fmt: skip
    bad_time = {"id": "r-9", "run_type": "llm", "trace_id": WEATHER, "inputs": {},
                "start_time": "yesterday"}  # fmt: skip
    lines = [
        "[1, 2]",
        json.dumps({"id": "r-1", "name": "x", "inputs": {}, "trace_id": "t-1"}),
        json.dumps(bad_time),
        json.dumps({"id": "r-2", "run_type": "tool", "trace_id": "t-2", "inputs": "oops"}),
        json.dumps(lonely),
        json.dumps({"id": "f-1", "run_id": "not-in-file", "key": "correctness", "score": 1}),
    ]
    text = (HERE / "runs.jsonl").read_text() + "\n".join(lines) + "\n"
    path = tmp_path / "runs.jsonl"
    path.write_text(text)
    summary, t, _ = ingest(lake, path)
    assert summary.exit_code == EXIT_PARTIAL
    assert sorted(t) == sorted([WEATHER, SUPPORT])
    errors = {e.record: e.error for e in summary.errors}
    n = len((HERE / "runs.jsonl").read_text().splitlines())
    assert "got a list" in errors[f"line {n + 1}"]
    assert "'run_type' is missing" in errors[f"line {n + 2}"]
    assert "start_time 'yesterday'" in errors[f"line {n + 3}"]
    assert "'inputs' is a string" in errors[f"line {n + 4}"]
    empty = errors[f"trace {lonely['id']} (line {n + 5})"]
    assert empty.startswith("trace without LLM messages or tool runs")
    assert "1 feedback record(s)" in errors["feedback"]


def test_outcome_rule():
    def outcome(stats=None, records=()):
        return langsmith._outcome(list(records), stats or {})[:2]

    assert outcome({"task_success": {"n": 1, "avg": 1}}) == ("success", 1.0)
    assert outcome({"correctness": {"n": 3, "avg": 0.6667}}) == ("failure", 0.6667)  # not all
    assert outcome({"reward": {"n": 1, "avg": 2.5}}) == ("success", 2.5)
    assert outcome({"helpfulness": {"n": 1, "avg": 1.0}}) == (None, None)  # not an outcome
    assert outcome({"incorrect": {"n": 1, "avg": 1.0}}) == (None, None)
    assert outcome(records=[{"key": "passed", "score": True, "run_id": "r"}]) == ("success", 1.0)
    assert outcome(records=[{"key": "passed", "score": False, "run_id": "r"}]) == ("failure", 0.0)
    # A free-text value says nothing: the next outcome key decides.
    both = {"outcome": {"n": 1, "avg": None, "values": {"meh": 1}}, "accuracy": {"n": 1, "avg": 0}}
    assert outcome(both) == ("failure", 0.0)
    # Records win over the stats of the same key; a key's scores are averaged.
    records = [{"key": "correct", "score": s, "run_id": "r"} for s in (1, 1)]
    assert outcome({"correct": {"n": 1, "avg": 0}}, records) == ("success", 1.0)


def test_responses_api_items_and_message_tuples():
    problems: list[str] = []
    out = lsm.output_atoms(
        {"output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "fc_1", "name": "search",
             "arguments": '{"q": "x"}'},
        ]},
        "run r", problems,
    )  # fmt: skip
    assert problems == []
    assert [(a.kind, a.text, a.call_id) for m in out for a in m] == [
        ("text", "Checking.", None), ("call", None, "fc_1"),
    ]  # fmt: skip
    given = lsm.input_atoms(
        {"instructions": "Be brief.", "input": [["user", "hi"]], "model": "gpt-4.1"}, "r", problems
    )
    assert [(a.role, a.text) for m in given for a in m] == [("system", "Be brief."), ("user", "hi")]


def test_one_document_from_the_api_reads_like_lines(tmp_path: Path):
    lines = [json.loads(x) for x in (HERE / "runs.jsonl").read_text().splitlines()]
    runs = [x for x in lines if "run_type" in x]
    feedback = [x for x in lines if "run_type" not in x]
    doc = read(json.dumps({"runs": runs, "cursors": {"next": None}}), tmp_path, "page.json")
    by_line = read((HERE / "runs.jsonl").read_text(), tmp_path)
    steps = {r.native_id: r.steps for r in by_line if isinstance(r, Run)}
    assert {r.native_id: r.steps for r in doc if isinstance(r, Run)} == steps
    # Without its feedback records the support trace has no outcome; nothing else is missing.
    assert [r.outcome for r in doc if isinstance(r, Run)] == [None, "success"]
    assert len(feedback) == 2 and not [r for r in doc if isinstance(r, BadRecord)]


def _paths(value, prefix=()):
    """Every key (and list index) path of a JSON value, down to seven levels."""
    if isinstance(value, dict | list) and len(prefix) < 7:
        for k, v in value.items() if isinstance(value, dict) else enumerate(value):
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))


def _replaced(value, path, new):
    out = json.loads(json.dumps(value))
    cur = out
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = new
    return out


def test_values_of_the_wrong_type_are_bad_records_never_a_crash(tmp_path: Path):
    lines = [json.loads(x) for x in (HERE / "runs.jsonl").read_text().splitlines()]
    tree = json.loads((HERE / "run-tree.json").read_text())
    samples = [lines[2], lines[7], lines[10], lines[16], lines[-1], tree[0]["child_runs"][1]]
    tried = 0
    for rec in samples:
        for path in _paths(rec):
            for wrong in (None, [], [[]], "x", 7, {}):
                broken = _replaced(rec, path, wrong)
                out = read("\n".join(json.dumps(x) for x in (*lines, broken)) + "\n", tmp_path)
                assert all(isinstance(r, Run | BadRecord) for r in out)
                tried += 1
    assert tried > 500
