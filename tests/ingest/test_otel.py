"""OpenTelemetry GenAI traces: one run per trace, steps deduplicated across model calls.

Fixtures: ``otel-semconv.jsonl`` (collector file exporter, newest GenAI attributes, spans in the
order they ended, a metrics line and an HTTP trace between them), ``otel-events.jsonl`` (older
message events, as log records beside their spans and as span events), ``otel-openllmetry.json``
(a JSON list of flat OpenLLMetry spans with plain attributes) and ``otel-openinference.log``
(OpenInference spans as the Python SDK's console exporter prints them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest import formats
from pipeline.ingest.formats import ReadContext, otel
from pipeline.ingest.formats.otel_messages import Atom
from pipeline.ingest.formats.otel_spans import SpanError, any_value, nanos, norm_id
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"
FILES = [
    "otel-semconv.jsonl",
    "otel-events.jsonl",
    "otel-openllmetry.json",
    "otel-openinference.log",
]
COLS = ["role", "kind", "content", "tool_name", "tool_args", "tool_call_id", "call_step_idx",
        "is_error"]  # fmt: skip


def ingest(lake: Lake, path: Path, **kw):
    summary = ingest_paths(lake, [path], **kw)
    t = lake.read("trajectories").sort("record", "native_id")
    s = lake.read("steps")
    runs = {
        n: s.filter(pl.col("trajectory_id") == tid).sort("step_idx")
        for n, tid in t.select("native_id", "trajectory_id").rows()
    }
    return summary, t, runs


def kinds(steps: pl.DataFrame) -> list[str]:
    return [f"{r}:{k}" for r, k in steps.select("role", "kind").rows()]


def read(path: Path) -> list:
    return list(otel.read(RawFile.read(path), ReadContext()))


@pytest.mark.parametrize("name", FILES)
def test_detected_from_content(tmp_path: Path, name: str):
    renamed = tmp_path / "export.data"
    shutil.copy(FIXTURES / name, renamed)
    assert formats.detect(RawFile.read(renamed)) == "otel"


def test_newest_conventions_one_run_per_trace_history_not_repeated(lake: Lake):
    summary, t, runs = ingest(lake, FIXTURES / "otel-semconv.jsonl")
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "otel"
    # The HTTP trace and the metrics line are not runs; each trace is spread over two lines.
    assert sorted(t["native_id"]) == ["0af7651916cd43dd8448eb211c80319c",
                                      "4bf92f3577b34da6a3ce929d0e0e4736"]  # fmt: skip
    row = t.filter(pl.col("native_id") == "4bf92f3577b34da6a3ce929d0e0e4736").row(0, named=True)
    assert (row["task_id"], row["model"], row["agent"]) == (
        "airline-17", "gpt-4o-2024-08-06", "booking-agent")  # fmt: skip
    assert (row["outcome"], row["reward"], row["outcome_origin"]) == ("failure", 0.0, "source")
    meta = json.loads(row["meta"])
    assert meta["usage"] == {"input_tokens": 2177, "output_tokens": 113}  # four model calls
    assert meta["grader"]["expected_actions"][0] == "get_reservation_details"
    assert meta["attributes"]["deployment.environment.name"] == "eval"
    assert "gen_ai.input.messages" not in meta["attributes"] and meta["spans"] == 8
    steps = runs["4bf92f3577b34da6a3ce929d0e0e4736"]
    # Four model calls each re-send the history: every message is a step once, in order.
    assert kinds(steps) == ["system:message", "user:message"] + [
        "assistant:tool_call", "tool:tool_result"] * 3 + ["assistant:message"]  # fmt: skip
    assert steps["content"][0].startswith("You are an airline agent")  # system instructions
    calls = steps.filter(pl.col("kind") == "tool_call")
    assert calls["tool_call_id"].to_list() == ["call_Qx1", "call_Qx2", "call_Qx3"]
    assert json.loads(calls["tool_args"][1]) == {
        "origin": "JFK", "destination": "SEA", "date": "05/20/2024"}  # fmt: skip
    assert calls["content"][1] == "Let me look for flights on May 20."  # text before the call
    results = steps.filter(pl.col("kind") == "tool_result")
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    # The failed search has no result: its status (ERROR) flags it and its message is the text.
    assert results["is_error"].to_list() == [False, True, False]
    assert results["content"][1] == "Error: dates must be YYYY-MM-DD, got '05/20/2024'"
    assert json.loads(results["content"][0])["cabin"] == "economy"


def test_a_message_said_twice_is_kept_twice(lake: Lake):
    _, t, runs = ingest(lake, FIXTURES / "otel-semconv.jsonl")
    steps = runs["0af7651916cd43dd8448eb211c80319c"]
    assert steps.filter(pl.col("role") == "user")["content"].to_list() == [
        "Cancel reservation XYZ789.", "yes", "yes"]  # fmt: skip
    assert steps.height == 8 and steps["content"][-1] == "What else can I do for you?"
    row = t.filter(pl.col("native_id") == "0af7651916cd43dd8448eb211c80319c").row(0, named=True)
    assert (row["outcome"], row["task_id"], row["model"]) == ("success", "airline-4", "gpt-4o-mini")


def test_older_event_conventions_in_logs_and_span_events(lake: Lake):
    summary, t, runs = ingest(lake, FIXTURES / "otel-events.jsonl")
    assert summary.exit_code == EXIT_OK
    steps = runs["7d3efb1b173fecfa7a3a1d5f8f2b4c21"]
    assert kinds(steps) == ["system:message", "user:message", "assistant:tool_call",
                            "tool:tool_result", "assistant:tool_call", "tool:tool_result",
                            "assistant:message"]  # fmt: skip
    # The tool spans carry no result: the next model call's gen_ai.tool.message gives it.
    assert json.loads(steps["content"][3]) == {"order_id": "W901", "status": "delivered",
                                               "total": 30.0}  # fmt: skip
    assert steps["is_error"].to_list()[5] and steps["content"][5].startswith("Error: refund limit")
    assert steps["content"][4] == "The order was delivered; refunding $30."
    assert "second choice" not in " ".join(steps["content"].drop_nulls())  # choice 1 not taken
    row = t.filter(pl.col("native_id") == "7d3efb1b173fecfa7a3a1d5f8f2b4c21").row(0, named=True)
    assert (row["outcome"], row["task_id"], row["agent"]) == ("failure", "retail-31", "support-bot")
    azure = runs["9a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e"]  # gen_ai.event.content on span events
    assert azure["content"].to_list() == ["Answer briefly.", "How many moons has Mars?",
                                          "Two: Phobos and Deimos."]  # fmt: skip
    assert t.filter(pl.col("model") == "Phi-4")["outcome"].to_list() == ["unknown"]


def test_openllmetry_flat_spans(lake: Lake):
    summary, t, runs = ingest(lake, FIXTURES / "otel-openllmetry.json")
    assert summary.exit_code == EXIT_OK and t.height == 1
    row = t.row(0, named=True)
    assert (row["task_id"], row["outcome"], row["agent"]) == ("retail-8", "success", "returns")
    assert row["record"] == "trace 3c6d9e1f2a4b5c7d8e9f0a1b2c3d4e5f ([0])"
    steps = runs[row["native_id"]]
    assert kinds(steps)[:2] == ["system:message", "user:message"] and steps.height == 9
    calls = steps.filter(pl.col("kind") == "tool_call")
    # Tool spans without call ids run the open call of their tool: no call is repeated.
    assert calls["tool_call_id"].to_list() == ["call_L1", "call_L2", "call_L3"]
    results = steps.filter(pl.col("kind") == "tool_result")
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    assert results["is_error"].to_list() == [False, True, False]
    assert results["content"][1] == "Exception: payment method missing"


def test_openinference_console_output(lake: Lake):
    summary, t, runs = ingest(lake, FIXTURES / "otel-openinference.log")
    assert summary.exit_code == EXIT_OK
    row = t.row(0, named=True)
    assert row["native_id"] == "6e0c63257de34c92bf9efcd03927272e"  # 0x prefix dropped
    assert (row["task_id"], row["reward"], row["outcome"]) == (
        "hotpotqa-5a8b57f25542995d1e6f1371",
        1.0,
        "success",
    )  # from the metadata object
    assert json.loads(row["meta"])["duration_ms"] == 9000.0  # ISO times
    steps = runs[row["native_id"]]
    assert kinds(steps) == ["user:message"] + ["assistant:tool_call", "tool:tool_result"] * 2 + [
        "assistant:message"]  # fmt: skip
    assert steps["content"][-1] == "Arthur's Magazine"  # the agent's own output is not repeated


def test_labels_give_the_outcome_by_trace_id(lake: Lake, tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text("trajectory_id,outcome\n9a1c3e5f7b9d1f3a5c7e9b1d3f5a7c9e,pass\n")
    ingest_paths(lake, [FIXTURES / "otel-events.jsonl"], labels=labels)
    t = lake.read("trajectories").filter(pl.col("native_id").str.starts_with("9a1c"))
    assert t.select("outcome", "outcome_origin").row(0) == ("success", "labels")


def span(trace: str, sid: str, attrs: dict, parent: str = "", start: int = 0, **kw) -> dict:
    return {"traceId": trace, "spanId": sid, "parentSpanId": parent, "name": kw.pop("name", "s"),
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
            **kw}  # fmt: skip


def chat(trace: str, sid: str, start: int, inputs: list, output: dict) -> dict:
    return span(trace, sid, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                             "gen_ai.input.messages": json.dumps(inputs),
                             "gen_ai.output.messages": json.dumps([output])}, start=start)  # fmt: skip


def text(role: str, content: str) -> dict:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


def test_bad_lines_and_spans_are_named_and_the_rest_read(lake: Lake, tmp_path: Path):
    good = "1" * 32
    lines = [
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            chat(good, "a" * 16, 0, [text("user", "hi")], text("assistant", "hello")),
            {"traceId": good, "name": "no span id"},
            {**span(good, "b" * 16, {"gen_ai.operation.name": "chat"}),
             "startTimeUnixNano": "yesterday"},
        ]}]}]}),  # fmt: skip
        '{"resourceSpans": [{"scopeSpans": [{"spans": [',  # cut short
        json.dumps({"hello": "world"}),
        json.dumps(span("2" * 32, "c" * 16, {"gen_ai.operation.name": "chat",
                                             "gen_ai.input.messages": '[{"role": "user", "par'})),
        json.dumps(chat(good, "d" * 16, 20, [text("user", "hi"), text("assistant", "hello"),
                                             text("user", "bye")], text("assistant", "ciao"))),
    ]  # fmt: skip
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summary, t, runs = ingest(lake, path)
    assert summary.exit_code == EXIT_PARTIAL
    assert runs[good]["content"].to_list() == ["hi", "hello", "bye", "ciao"]
    errors = {(e.record, e.error) for e in summary.errors}
    text_of = dict(errors)
    assert sorted(text_of) == ["line 1: resourceSpans[0].scopeSpans[0].spans[1]",
                               "line 1: resourceSpans[0].scopeSpans[0].spans[2]", "line 2",
                               "line 3", "line 4", f"trace {'2' * 32} (line 4)"]  # fmt: skip
    assert "without a spanId" in text_of["line 1: resourceSpans[0].scopeSpans[0].spans[1]"]
    assert "is not a time" in text_of["line 1: resourceSpans[0].scopeSpans[0].spans[2]"]
    assert "invalid JSON" in text_of["line 2"] and "span with traceId" in text_of["line 3"]
    assert "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" in text_of["line 4"]
    assert "could not be read" in text_of[f"trace {'2' * 32} (line 4)"]
    assert all(e.file == str(path) for e in summary.errors)


def test_damaged_console_output_reads_on_from_the_next_object(tmp_path: Path):
    objects = (FIXTURES / "otel-openinference.log").read_text().split("\n}\n{")
    assert len(objects) == 6
    objects[2] = objects[2][: len(objects[2]) // 2]  # a tool span cut in the middle
    path = tmp_path / "console.log"
    path.write_text("\n}\n{".join(objects))
    items = read(path)
    bad = [i for i in items if isinstance(i, BadRecord)]
    assert len(bad) == 1 and "invalid JSON" in bad[0].error and bad[0].record.startswith("line ")
    (run,) = [i for i in items if isinstance(i, Run)]
    assert run.meta["spans"] == 5 and run.outcome == "success"


def test_files_without_genai_spans_say_so(lake: Lake, tmp_path: Path):
    http = tmp_path / "http.jsonl"
    http.write_text(json.dumps(span("3" * 32, "e" * 16, {"http.method": "GET"})) + "\n")
    summary = ingest_paths(lake, [http], format="otel")
    assert summary.exit_code == EXIT_PARTIAL and summary.n_trajectories == 0
    assert "none with GenAI spans" in summary.errors[0].error


def test_invalid_outcome_is_an_error_for_that_trace_only(tmp_path: Path):
    lines = [span("4" * 32, "f" * 16, {"outcome": "maybe"}),
             chat("4" * 32, "1" * 16, 5, [text("user", "a")], text("assistant", "b")),
             chat("5" * 32, "2" * 16, 5, [text("user", "c")], text("assistant", "d"))]  # fmt: skip
    lines[1]["parentSpanId"] = "f" * 16
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(lines))
    items = read(path)
    assert [type(i).__name__ for i in items] == ["BadRecord", "Run"]
    assert "outcome 'maybe'" in items[0].error and items[0].record == f"trace {'4' * 32} ([0])"


def test_histories_in_another_order_and_sub_agents_repeat_nothing():
    t = otel.Transcript()
    user, system = Atom("text", "user", "task"), Atom("text", "system", "rules")
    t.absorb([[user]], fresh=False)  # an agent span gives the request first
    t.absorb([[system], [user]], fresh=False)  # its model call sends instructions + request
    t.absorb([[Atom("call", "assistant", None, "c1", "f", {}),
               Atom("call", "assistant", None, "c2", "g", {})]], fresh=True)  # fmt: skip
    t.absorb([[Atom("text", "system", "sub-agent rules")], [Atom("text", "user", "sub")]], False)
    t.tool_result(t.tool_call(Atom("call", "assistant", None, "c2", "g", {})),
                  Atom("result", "tool", "two", "c2", "g"))  # fmt: skip
    t.tool_result(t.tool_call(Atom("call", "assistant", None, "c1", "f", {})),
                  Atom("result", "tool", "one", "c1", "f"))  # fmt: skip
    # The next history holds the results in call order, and not the sub-agent's messages.
    t.absorb([[system], [user], [Atom("call", "assistant", None, "c1", "f", {}),
              Atom("call", "assistant", None, "c2", "g", {})],
              [Atom("result", "tool", "one", "c1")], [Atom("result", "tool", "two", "c2")],
              [Atom("text", "user", "thanks")]], fresh=False)  # fmt: skip
    assert [s[2] or s[3] for s in t.b.steps] == [
        "task", "rules", "f", "g", "sub-agent rules", "sub", "two", "one", "thanks"]  # fmt: skip
    assert [s[6] for s in t.b.steps if s[1] == "tool_result"] == [3, 2]


def test_span_values_ids_and_times():
    typed = {"kvlistValue": {"values": [
        {"key": "n", "value": {"intValue": "3"}},
        {"key": "xs", "value": {"arrayValue": {"values": [{"doubleValue": 0.5},
                                                          {"boolValue": True}]}}}]}}  # fmt: skip
    assert any_value(typed) == {"n": 3, "xs": [0.5, True]}
    assert any_value({"content": "plain"}) == {"content": "plain"}
    assert norm_id("0x4BF92F3577B34DA6A3CE929D0E0E4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert norm_id("S/kvNXezTaajzpKdDg5HNg==") == "4bf92f3577b34da6a3ce929d0e0e4736"  # base64
    assert norm_id("0000000000000000") is None and norm_id("") is None
    ns = 1_715_785_200_000_000_000
    assert nanos(str(ns), "t") == nanos("2024-05-15T15:00:00Z", "t") == ns
    assert nanos([1_715_785_200, 5], "t") == ns + 5 and nanos(1_715_785_200_000, "t") == ns
    with pytest.raises(SpanError, match="is not a time"):
        nanos("soon", "start time")


def test_synthetic_traces_give_back_the_runs_written(tmp_path: Path):
    """Every synthetic run, whatever its message convention, ingests to the steps of the chat
    messages it was written from (up to its last model call and the tools it ran)."""
    from pipeline.ingest.formats.chat import chat_steps
    from pipeline.ingest.synth import shard_episodes, write_synthetic
    from pipeline.ingest.synth.otel import VARIANTS, trace_id, variant

    n = 45
    write_synthetic(tmp_path / "raw", n, format="otel", seed=11)
    lake = Lake(tmp_path / "lake")
    summary = ingest_paths(lake, [tmp_path / "raw"])
    assert summary.exit_code == EXIT_OK and summary.n_trajectories == n
    t = lake.read("trajectories")
    steps = lake.read("steps")
    episodes = shard_episodes("otel", 11, 0, 0, n)
    assert {variant(e) for e in episodes} == set(VARIANTS)
    for e in episodes:
        tid = t.filter(pl.col("native_id") == trace_id(e))["trajectory_id"].item()
        got = steps.filter(pl.col("trajectory_id") == tid).sort("step_idx").select(COLS).rows()
        last = max(i for i, m in enumerate(e.messages) if m["role"] == "assistant")
        while last + 1 < len(e.messages) and e.messages[last + 1]["role"] == "tool":
            last += 1
        assert got == [s[:8] for s in chat_steps(e.messages[: last + 1]).steps], e.run_id


def test_spans_without_times_follow_the_file_and_instant_spans_keep_call_before_result(
    tmp_path: Path,
):
    # No model output holds the call: the tool span itself gives it, then its result.
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add",
            "gen_ai.tool.call.id": "c1", "gen_ai.tool.call.arguments": '{"a": 1}',
            "gen_ai.tool.call.result": "2"}  # fmt: skip
    for timed in (False, True):
        spans = [chat("6" * 32, "1" * 16, 0, [text("user", "1+1?")], text("assistant", "Adding.")),
                 span("6" * 32, "2" * 16, tool, start=20),
                 chat("6" * 32, "3" * 16, 40, [text("user", "1+1?")], text("assistant", "2"))]  # fmt: skip
        spans[1]["endTimeUnixNano"] = spans[1]["startTimeUnixNano"]  # an instant
        if not timed:
            for s in spans:
                del s["startTimeUnixNano"], s["endTimeUnixNano"]
        path = tmp_path / f"spans-{timed}.jsonl"
        path.write_text("".join(json.dumps(s) + "\n" for s in spans))
        (run,) = read(path)
        assert [(s[0], s[1], s[2] or s[3]) for s in run.steps] == [
            ("user", "message", "1+1?"), ("assistant", "message", "Adding."),
            ("assistant", "tool_call", "add"), ("tool", "tool_result", "2"),
            ("assistant", "message", "2")]  # fmt: skip
        assert run.steps[3][6] == 2  # the result answers the call


def test_one_document_gives_the_same_runs_as_export_lines(tmp_path: Path):
    lines = [json.loads(x) for x in (FIXTURES / "otel-semconv.jsonl").read_text().splitlines()]
    doc = {"resourceSpans": [r for x in lines for r in x.get("resourceSpans", [])]}
    whole, lined = tmp_path / "a" / "trace.json", tmp_path / "b" / "trace.json"
    for path in (whole, lined):
        path.parent.mkdir()
    whole.write_text(json.dumps(doc, indent=2))
    shutil.copy(FIXTURES / "otel-semconv.jsonl", lined)
    ids = []
    for path in (whole, lined):
        lake = Lake(path.parent / "lake")
        assert ingest_paths(lake, [path], source="s").exit_code == EXIT_OK
        ids.append(sorted(lake.read("trajectories")["trajectory_id"]))
    assert ids[0] == ids[1] and len(ids[0]) == 2
    whole.write_text(json.dumps(doc, indent=2)[:-400])  # cut short
    items = read(whole)
    assert [type(i).__name__ for i in items] == ["BadRecord"]
    assert "truncated JSON" in items[0].error and items[0].record == "line 1"
