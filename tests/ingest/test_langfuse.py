"""Langfuse traces: one run per trace, from the trace, its observations and its scores.

Fixtures (``fixtures/langfuse/``): ``trace-api.json`` (``GET /api/public/traces/{id}``: OpenAI
integration generations with ``{"tools", "messages"}`` input, a tool traced as a SPAN, a TOOL at
level ERROR, an EVENT, observations out of time order, a boolean score), ``traces.jsonl`` (one
such response per line, LangChain handler observations: ``tool_calls`` with ``args``, TOOL
outputs that are ``ToolMessage`` s; a trace listed by ids only and a damaged line between them) and
``trace-download.json`` (the UI's download, ``{"observations", "scores"}``, input and output as
JSON text, tools run outside any observation).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest import formats
from pipeline.ingest.formats import ReadContext, langfuse
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"
OURS = FIXTURES / "langfuse"


def ingest(lake: Lake, path: Path):
    summary = ingest_paths(lake, [path])
    t = lake.read("trajectories").sort("record")
    s = lake.read("steps")
    runs = {
        n: s.filter(pl.col("trajectory_id") == tid).sort("step_idx")
        for n, tid in t.select("native_id", "trajectory_id").rows()
    }
    return summary, t, runs


def kinds(steps: pl.DataFrame) -> list[str]:
    return [f"{r}:{k}" for r, k in steps.select("role", "kind").rows()]


def runs_of(text: str, tmp_path: Path, name: str = "export.json") -> list:
    path = tmp_path / name
    path.write_text(text)
    return list(langfuse.read(RawFile.read(path), ReadContext()))


@pytest.mark.parametrize("name", ["trace-api.json", "traces.jsonl", "trace-download.json"])
def test_detected_from_content(tmp_path: Path, name: str):
    renamed = tmp_path / "export.data"
    shutil.copy(OURS / name, renamed)
    assert formats.detect(RawFile.read(renamed)) == "langfuse"


def test_other_formats_are_not_taken_for_langfuse():
    others = [p for p in FIXTURES.rglob("*") if p.is_file() and OURS not in p.parents]
    assert len(others) >= 10
    for path in others:
        raw = RawFile.read(path)
        assert not langfuse.sniff(formats.sample(raw), raw), path.name


def test_api_trace(lake: Lake):
    summary, t, runs = ingest(lake, OURS / "trace-api.json")
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "langfuse"
    row = t.row(0, named=True)
    assert row["native_id"] == "7f3c9a1e-2b4d-4e8f-9a6b-1c2d3e4f5a6b"
    assert row["task_id"] == "acme-refund-42"  # from the trace metadata
    assert row["model"] == "gpt-4o-2024-08-06" and row["agent"] == "support-agent"
    assert row["outcome"] == "failure"  # BOOLEAN task_success = False; helpfulness is no outcome
    meta = json.loads(row["meta"])
    assert meta["scores"] == {"task_success": 0, "helpfulness": 0.8}
    assert meta["usage"] == {"input_tokens": 620, "output_tokens": 71}
    assert meta["metadata"] == {"env": "staging"} and meta["errors"] == ["refund"]
    s = runs[row["native_id"]]
    # Three generations re-send the history: every message is one step, in time order.
    assert kinds(s) == ["system:message", "user:message", "assistant:tool_call", "tool:tool_result",
                        "assistant:tool_call", "tool:tool_result", "assistant:message"]  # fmt: skip
    calls = s.filter(pl.col("kind") == "tool_call")
    assert calls["tool_name"].to_list() == ["get_order", "refund"]
    assert calls["tool_call_id"].to_list() == ["call_a1", "call_b2"]
    assert json.loads(calls["tool_args"][1]) == {"order_id": "42", "amount": 30.0}
    assert calls["content"][1] == "The order is eligible; refunding now."
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    # The SPAN named get_order ran the call; the TOOL at level ERROR gives its status message.
    assert json.loads(results["content"][0])["status"] == "delivered"
    assert results["content"][1] == "card declined"
    assert results["is_error"].to_list() == [False, True]
    assert s["content"][6].startswith("I could not refund the card")


def test_langchain_traces_as_json_lines(lake: Lake):
    summary, t, runs = ingest(lake, OURS / "traces.jsonl")
    assert summary.exit_code == EXIT_PARTIAL
    assert t["native_id"].to_list() == [
        "b41c0d2e8f7a4c55a0c1d2e3f4a5b6c7", "c0ffee00c0ffee00c0ffee00c0ffee00"]  # fmt: skip
    assert t["task_id"].to_list() == ["acme__dates-7", "capital-fr"]  # metadata / a task: tag
    assert t["model"].to_list() == ["claude-3-5-sonnet-20241022", "gpt-4o-mini"]
    assert t["outcome"].to_list() == ["failure", "success"]  # reward 0.0 / label "pass"
    assert t["reward"].to_list() == [0.0, None]
    coding = runs["b41c0d2e8f7a4c55a0c1d2e3f4a5b6c7"]
    calls = coding.filter(pl.col("kind") == "tool_call")
    assert calls["tool_name"].to_list() == ["read_file", "bash"]
    assert [json.loads(a) for a in calls["tool_args"]] == [
        {"path": "dates.py"}, {"command": "pytest -q tests/test_dates.py"}]  # fmt: skip
    results = coding.filter(pl.col("kind") == "tool_result")
    assert results["tool_call_id"].to_list() == ["toolu_01", "toolu_02"]
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    assert results["content"].to_list() == [
        "def is_leap(y): return y % 4 == 0", "1 failed: test_1900_is_not_leap"]  # fmt: skip
    assert results["is_error"].to_list() == [False, True]  # ToolMessage status "error"
    assert len(coding) == 7
    assert kinds(runs["c0ffee00c0ffee00c0ffee00c0ffee00"]) == ["user:message", "assistant:message"]
    errors = lake.read("ingest_errors").sort("record")
    assert errors["record"].to_list() == ["line 3", "trace d00d (line 2)"]
    assert "listed by id only" in errors["error"][1]


def test_ui_download(lake: Lake):
    summary, t, runs = ingest(lake, OURS / "trace-download.json")
    assert summary.exit_code == EXIT_OK
    row = t.row(0, named=True)
    assert row["native_id"] == "e1d2c3b4a5968778695a4b3c2d1e0f00"
    assert row["task_id"] == "weather-sess-3"  # no task in metadata or tags: the session
    assert row["model"] == "gpt-4.1-mini" and row["agent"] == "weather-bot"
    assert row["outcome"] == "unknown"  # only a helpfulness score
    s = runs[row["native_id"]]
    assert kinds(s) == ["user:message", "assistant:tool_call", "assistant:tool_call",
                        "tool:tool_result", "tool:tool_result", "assistant:message"]  # fmt: skip
    assert s["content"][0] == "Weather in Oslo and Bergen?"  # content parts, from JSON text
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["tool_call_id"].to_list() == ["call_oslo", "call_bergen"]
    assert results["call_step_idx"].to_list() == [1, 2]
    assert results["is_error"].to_list() == [False, True]  # by its text: "Error: ..."


def _obs(oid: str, kind: str, start: str, **kw) -> dict:
    return {"id": oid, "traceId": "t1", "type": kind, "name": kw.pop("name", kind.lower()),
            "startTime": f"2025-01-01T00:00:0{start}Z", **kw}  # fmt: skip


def test_observations_page_grouped_by_trace_with_scores_beside_them(tmp_path: Path):
    page = {"data": [
        _obs("g2", "GENERATION", "3", model="m", input=[{"role": "user", "content": "hi"}],
             output="again"),
        _obs("g1", "GENERATION", "1", model="m", input="hi", output={"role": "assistant",
                                                                     "content": "hello"}),
    ], "meta": {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}}  # fmt: skip
    score = {"traceId": "t1", "name": "resolved", "value": 1, "dataType": "NUMERIC",
             "source": "API"}  # fmt: skip
    items = runs_of(json.dumps(page) + "\n" + json.dumps(score) + "\n", tmp_path, "obs.jsonl")
    (run,) = items
    assert isinstance(run, Run) and run.native_id == "t1" and run.outcome == "success"
    assert [(s[0], s[2]) for s in run.steps] == [
        ("user", "hi"), ("assistant", "hello"), ("assistant", "again")]  # fmt: skip


def test_legacy_download_and_bad_records(tmp_path: Path):
    doc = [
        {"trace": {"id": "t1", "name": "bot", "scores": [{"name": "Accuracy", "value": 0.5,
                                                          "dataType": "NUMERIC"}]},
         "observations": [_obs("g1", "GENERATION", "1", input="q", output="a"), "junk",
                          _obs("g2", "GENERATION", "2", endTime="yesterday", output="x")]},
        {"trace": {"id": "t2"}, "observations": [_obs("s", "SPAN", "1", input="x")]},
        42,
    ]  # fmt: skip
    items = runs_of(json.dumps(doc), tmp_path)
    runs = [i for i in items if isinstance(i, Run)]
    bad = {b.record: b.error for b in items if isinstance(b, BadRecord)}
    assert [r.native_id for r in runs] == ["t1"]
    assert runs[0].outcome == "failure" and runs[0].reward == 0.5  # accuracy 0.5 < 1.0
    assert [s[2] for s in runs[0].steps] == ["q", "a"]  # g2's time is unreadable: not read
    assert set(bad) == {"[0] observations[1]", "[0] observations[2]", "[2]", "trace t2 ([1])"}
    assert "endTime 'yesterday'" in bad["[0] observations[2]"]
    assert "without messages" in bad["trace t2 ([1])"]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([{"name": "passed", "dataType": "BOOLEAN", "value": 1, "stringValue": "True"}],
         "success"),
        ([{"name": "is_correct", "dataType": "CATEGORICAL", "stringValue": "incorrect"}],
         "failure"),
        ([{"name": "success", "value": 1.0}, {"name": "reward", "value": 0.0}], "success"),
        ([{"name": "incorrectness", "value": 1.0}, {"name": "quality", "value": 1.0}], None),
        ([{"name": "outcome", "value": 1, "observationId": "o1", "timestamp": "2"},
          {"name": "outcome", "value": 0, "observationId": None, "timestamp": "1"}], "failure"),
    ],
)  # fmt: skip
def test_outcome_from_scores(scores: list, expected):
    assert langfuse.score_outcome(scores)[0] == expected
