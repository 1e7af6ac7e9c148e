"""Arize Phoenix span exports: one run per trace, outcome from annotations.

Fixtures (``fixtures/phoenix/``), written with pandas the way Phoenix's client shapes its spans
dataframe (indexed by ``context.span_id``, the column kept, ``attributes.llm.input_messages``
holding lists of ``message.*`` dicts): ``phoenix-spans.jsonl`` (``to_json(orient="records",
lines=True, date_format="iso")``: a support agent whose second tool times out, a one-call chat,
then the span annotations frame's rows, ``reset_index()``) and ``phoenix-spans.parquet``
(``to_parquet()``: a coding agent with ``message.contents`` parts and tool call ids on its tool
spans, outcome in ``attributes.metadata``, and a one-call chat without any).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest import formats
from pipeline.ingest.formats import ReadContext, phoenix
from pipeline.ingest.formats.phoenix import Note
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"
SPANS_JSONL = FIXTURES / "phoenix" / "phoenix-spans.jsonl"
SPANS_PARQUET = FIXTURES / "phoenix" / "phoenix-spans.parquet"
SUPPORT = "8f1c2d3e4b5a69788796a5b4c3d2e1f0"
CHAT = "1e2d3c4b5a69788776655443322110aa"
CODING = "5d4c3b2a19087f6e5d4c3b2a19087f6e"
REVIEW = "6e5d4c3b2a19087f6e5d4c3b2a190870"
COLS = ["role", "kind", "tool_name", "tool_call_id", "call_step_idx", "is_error"]


def ingest(lake: Lake, path: Path):
    summary = ingest_paths(lake, [path])
    t = lake.read("trajectories")
    s = lake.read("steps")
    runs = {
        n: s.filter(pl.col("trajectory_id") == tid).sort("step_idx")
        for n, tid in t.select("native_id", "trajectory_id").rows()
    }
    return summary, t, runs


def run_row(t: pl.DataFrame, native_id: str) -> dict:
    return t.filter(pl.col("native_id") == native_id).row(0, named=True)


def span_rows() -> list[dict]:
    rows = [json.loads(line) for line in SPANS_JSONL.read_text().splitlines()]
    return [r for r in rows if "context.span_id" in r]


@pytest.mark.parametrize("path", [SPANS_JSONL, SPANS_PARQUET])
def test_detected_from_content(tmp_path: Path, path: Path):
    renamed = tmp_path / "export.data"
    shutil.copy(path, renamed)
    assert formats.detect(RawFile.read(renamed)) == "phoenix"


def test_other_formats_are_not_claimed(tmp_path: Path):
    others = [p for p in FIXTURES.iterdir() if p.is_file()]
    assert len(others) >= 10
    for path in others:
        raw = RawFile.read(path)
        assert not phoenix.sniff(formats.sample(raw), raw), path.name
    # Our own steps table in Parquet stays with the native reader.
    steps = tmp_path / "steps.parquet"
    pl.DataFrame({"trajectory_id": ["t1"], "role": ["user"], "content": ["hi"]}).write_parquet(
        steps
    )
    assert formats.detect(RawFile.read(steps)) == "parquet"


def test_json_lines_one_run_per_trace_history_not_repeated(lake: Lake):
    summary, t, runs = ingest(lake, SPANS_JSONL)
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "phoenix"
    assert sorted(t["native_id"]) == sorted([SUPPORT, CHAT])
    row = run_row(t, SUPPORT)
    assert (row["task_id"], row["model"], row["agent"]) == (
        "orders-4417", "gpt-4o-2024-08-06", "support-agent")  # fmt: skip
    assert (row["outcome"], row["reward"], row["outcome_origin"]) == ("success", 1.0, "source")
    meta = json.loads(row["meta"])
    assert meta["usage"] == {"input_tokens": 1480, "output_tokens": 102}  # three LLM calls
    assert meta["outcome_annotation"] == "correctness"
    assert [a["name"] for a in meta["annotations"]] == ["correctness", "helpfulness"]
    assert meta["attributes"]["tag.tags"] == ["prod", "eval"]
    steps = runs[SUPPORT]
    # Each LLM call re-sends the whole history: every message is still one step.
    assert steps.select(COLS).rows() == [
        ("system", "message", None, None, None, False),
        ("user", "message", None, None, None, False),
        ("assistant", "tool_call", "lookup_order", "call_Q1xa", None, False),
        ("tool", "tool_result", "lookup_order", "call_Q1xa", 2, False),
        ("assistant", "tool_call", "track_package", "call_Q2kb", None, False),
        ("tool", "tool_result", "track_package", "call_Q2kb", 4, True),
        ("assistant", "message", None, None, None, False),
    ]
    assert json.loads(steps["tool_args"][2]) == {"order_id": "4417"}
    assert steps["content"][3].startswith('{"status": "shipped"')
    assert steps["content"][4] == "The order has shipped; let me check the carrier."
    assert steps["content"][5] == "TimeoutError: carrier API did not answer within 5s"
    assert steps["content"][6].startswith("Your order #4417 shipped with UPS")
    chat = run_row(t, CHAT)
    assert (chat["task_id"], chat["model"], chat["outcome"], chat["reward"]) == (
        "sess-9b21", "gpt-4o-mini-2024-07-18", "failure", 0.0)  # fmt: skip
    assert runs[CHAT]["content"].to_list() == [
        "Cancel order #5120 please.", "I have cancelled order #5120."]  # fmt: skip


def test_parquet_spans_dataframe(lake: Lake):
    summary, t, runs = ingest(lake, SPANS_PARQUET)
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "phoenix"
    row = run_row(t, CODING)
    assert (row["task_id"], row["model"], row["agent"], row["outcome"]) == (
        "csvkit-count-3", "claude-3-5-sonnet-20241022", "coding-agent", "success")  # fmt: skip
    steps = runs[CODING]
    assert steps.select(COLS).rows() == [
        ("system", "message", None, None, None, False),
        ("user", "message", None, None, None, False),
        ("assistant", "tool_call", "bash", "toolu_01A", None, False),
        ("tool", "tool_result", "bash", "toolu_01A", 2, False),
        ("assistant", "tool_call", "str_replace", "toolu_01B", None, False),
        ("tool", "tool_result", "str_replace", "toolu_01B", 4, False),
        ("assistant", "message", None, None, None, False),
    ]
    assert steps["content"][1].startswith("Fix the off-by-one")  # from message.contents parts
    assert steps["content"][2] == "Let me run the failing test first."
    assert json.loads(steps["tool_args"][4])["path"] == "csvkit/count.py"
    review = run_row(t, REVIEW)
    assert (review["task_id"], review["outcome"], review["reward"]) == (
        "review-88",
        "unknown",
        None,
    )


@pytest.mark.parametrize("layout", ["records", "columns", "index", "table"])
def test_other_to_json_layouts_read_alike(tmp_path: Path, layout: str):
    rows = span_rows()
    by_id = {r["context.span_id"]: r for r in rows}
    doc = {
        "records": rows,
        "columns": {c: {k: r.get(c) for k, r in by_id.items()} for c in rows[0]},
        "index": by_id,
        "table": {"schema": {"fields": [], "primaryKey": ["index"]}, "data": rows},
    }[layout]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(doc, indent=1))
    raw = RawFile.read(path)
    assert formats.detect(raw) == "phoenix"
    runs = {r.native_id: r for r in phoenix.read(raw, ReadContext()) if isinstance(r, Run)}
    assert sorted(runs) == sorted([SUPPORT, CHAT])
    assert [s[1] for s in runs[SUPPORT].steps] == [
        "message",
        "message",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "message",
    ]
    assert runs[SUPPORT].outcome is None  # the annotations are not in these files


def test_bad_rows_are_reported_and_the_rest_is_read(lake: Lake, tmp_path: Path):
    lines = SPANS_JSONL.read_text().splitlines()
    no_id = {**json.loads(lines[1]), "context.span_id": None}
    chain = {**json.loads(lines[0]), "context.trace_id": "ab" * 16, "context.span_id": "cd" * 8,
             "span_kind": "CHAIN", "attributes.openinference.span.kind": "CHAIN"}  # fmt: skip
    stray = {**json.loads(lines[-1]), "span_id": "ef" * 8}
    bad = [lines[0], json.dumps(no_id), '{"name": "ChatCompletion", "span_', *lines[1:],
           json.dumps(chain), json.dumps(stray)]  # fmt: skip
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(bad) + "\n")
    summary, t, runs = ingest(lake, path)
    assert summary.exit_code == EXIT_PARTIAL
    errors = {e.record: e.error for e in summary.errors}
    assert "without a spanId" in errors["line 2"]
    assert errors["line 3"].startswith("invalid JSON")
    assert "which is not in this file" in errors[f"line {len(bad)}"]
    chain_error = next(v for k, v in errors.items() if k.startswith(f"trace {'ab' * 16}"))
    assert "without LLM messages or tool calls" in chain_error
    assert sorted(t["native_id"]) == sorted([SUPPORT, CHAT])
    assert len(runs[SUPPORT]) == 7 and run_row(t, SUPPORT)["outcome"] == "success"


def test_a_file_without_rows_is_a_bad_record(tmp_path: Path):
    path = tmp_path / "empty.json"
    path.write_text("[]")
    assert [type(r) for r in phoenix.read(RawFile.read(path), ReadContext())] == [BadRecord]


def note(name: str, label=None, score=None, span_id=None) -> Note:
    return Note(name, label, score, None, "LLM", span_id)


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        ([note("correctness", "incorrect", 1.0)], ("failure", 1.0)),  # the label says it
        ([note("Q&A Correctness", "correct")], ("success", None)),
        ([note("task_success", score=1)], ("success", 1.0)),  # 0/1 scores
        ([note("passed", score=False)], ("failure", 0.0)),
        ([note("reward", "good", 1.5)], ("success", 1.5)),  # a reward of 1.0 or more
        ([note("accuracy", score=0.75)], ("failure", 0.75)),
        ([note("helpfulness", "helpful", 1.0)], (None, None)),  # not about the outcome
        (
            [note("hallucination", "factual", 1.0), note("resolved", "unresolved")],
            ("failure", None),
        ),
    ],
)
def test_outcome_from_annotations(notes, expected):
    run = Run("trace", [], native_id="t")
    phoenix._judge(run, notes)
    assert (run.outcome, run.reward) == expected
    assert [a["name"] for a in run.meta["annotations"]] == [n.name for n in notes]


def test_trace_annotations_come_before_span_annotations(tmp_path: Path):
    rows = [r for r in span_rows() if r["context.trace_id"] == CHAT]
    span_note = {"span_id": rows[0]["context.span_id"], "annotation_name": "correctness",
                 "result": {"label": "correct", "score": 1.0}}  # fmt: skip
    trace_note = {"trace_id": CHAT, "annotation_name": "task_success", "result.score": 0.0}
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [*rows, span_note, trace_note]) + "\n")
    (run,) = phoenix.read(RawFile.read(path), ReadContext())
    assert (run.outcome, run.reward, run.meta["outcome_annotation"]) == ("failure", 0.0,
                                                                         "task_success")  # fmt: skip
