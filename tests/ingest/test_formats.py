"""Each format adapter on a small hand-written file of its real shape; detection from content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest import formats
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.run import EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake

FIXTURES = Path(__file__).parent / "fixtures"


def ingest_one(lake: Lake, path: Path, **kw):
    summary = ingest_paths(lake, [path], **kw)
    t = lake.read("trajectories").sort("record")
    order = t.select("trajectory_id", "record")
    s = lake.read("steps").join(order, on="trajectory_id").sort("record", "step_idx").drop("record")
    return summary, t, s


@pytest.mark.parametrize(
    ("name", "expected"),
    [("chat.jsonl", "openai-chat"), ("claude-session.jsonl", "claude-code"),
     ("acme__text-101.traj.json", "mini-swe-agent"), ("acme__dates-7.traj.json", "mini-swe-agent"),
     ("acme__csv-12.traj", "swe-agent"), ("custom-runs.json", None)],
)  # fmt: skip
def test_detection_reads_content_not_names(tmp_path: Path, name: str, expected):
    renamed = tmp_path / "input.data"  # a name that says nothing
    shutil.copy(FIXTURES / name, renamed)
    assert formats.detect(RawFile.read(renamed)) == expected


def test_detection_of_the_demo_formats(tmp_path: Path):
    from tests.conftest import DATA

    tau = tmp_path / "runs.txt"
    tau.write_text(
        json.dumps(json.loads((DATA / "tau-bench-airline/gpt-4o-airline.json").read_text())[:2])
    )
    assert formats.detect(RawFile.read(tau)) == "tau-bench"
    react = tmp_path / "log.json"
    react.write_text((DATA / "reflexion-hotpotqa/100_questions_5_trials.txt").read_text()[:20000])
    assert formats.detect(RawFile.read(react)) == "react-text"


def test_chat_lines_are_detected_among_as_many_broken_ones(lake: Lake, tmp_path: Path):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join([json.dumps(good), '{"messages": [', json.dumps({"id": "x"})]) + "\n")
    assert formats.detect(RawFile.read(path)) == "openai-chat"
    summary, t, _ = ingest_one(lake, path)
    assert summary.exit_code == EXIT_PARTIAL and t.height == 1
    assert len(lake.read("ingest_errors")) == 2
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text(json.dumps({"id": "x"}) + "\n" + json.dumps({"id": "y"}) + "\n")
    assert formats.detect(RawFile.read(only_bad)) is None


def test_a_damaged_first_line_loses_only_itself(lake: Lake, tmp_path: Path):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "runs.jsonl"
    path.write_text(
        '{"messages": [{"role": "us\n' + "\n".join(json.dumps({**good, "id": i}) for i in range(3))
    )
    assert RawFile.read(path).is_jsonl
    summary, t, _ = ingest_one(lake, path)
    assert summary.exit_code == EXIT_PARTIAL and t.height == 3
    errors = lake.read("ingest_errors")
    assert errors["record"].to_list() == ["line 1"]
    pretty = tmp_path / "pretty.json"  # a document whose inner objects are on lines of their own
    pretty.write_text('{\n  "messages": [\n    {"role": "user", "content": "x"}\n  ]\n}\n')
    assert not RawFile.read(pretty).is_jsonl


def test_openai_chat(lake: Lake):
    summary, t, s = ingest_one(lake, FIXTURES / "chat.jsonl")
    assert summary.exit_code == EXIT_OK and summary.files[0].format == "openai-chat"
    assert t["native_id"].to_list() == ["run-1", "run-2", "run-3"]
    assert t["outcome"].to_list() == [
        "success",
        "failure",
        "unknown",
    ]  # reward 1.0 / outcome / none
    assert t["model"].to_list() == ["gpt-4o-mini", "gpt-4o-mini", None]
    meta = [json.loads(m) for m in t["meta"]]
    assert meta[0]["grader"] == {"expected": {"refund": 30.0}} and meta[1]["tags"] == ["refunds"]
    run1 = s.filter(pl.col("trajectory_id") == t["trajectory_id"][0])
    # Two parallel calls in one message: one step each, results linked by id.
    calls = run1.filter(pl.col("kind") == "tool_call")
    assert calls["tool_name"].to_list() == ["get_order", "refund", "notify"]
    assert calls["message_idx"].to_list() == [2, 4, 4]
    results = run1.filter(pl.col("kind") == "tool_result")
    assert results["call_step_idx"].to_list() == calls["step_idx"].to_list()
    run2 = s.filter(pl.col("trajectory_id") == t["trajectory_id"][1])
    assert run2["content"][0] == "Refund order 43 please."  # content parts joined
    assert run2.filter(pl.col("kind") == "tool_result")["is_error"].to_list() == [True]
    run3 = s.filter(pl.col("trajectory_id") == t["trajectory_id"][2])
    assert run3.filter(pl.col("kind") == "tool_call")["tool_args"].to_list() == ['"{not json"']
    assert run3.filter(pl.col("kind") == "tool_result")["tool_name"].to_list() == ["track"]


def test_mini_swe_agent_text_format(lake: Lake):
    summary, t, s = ingest_one(lake, FIXTURES / "acme__text-101.traj.json")
    assert summary.files[0].format == "mini-swe-agent"
    assert t["task_id"].to_list() == ["acme__text-101"]
    assert t["model"].to_list() == ["anthropic/claude-sonnet-4-20250514"]
    assert t["outcome"].to_list() == ["unknown"]
    meta = json.loads(t["meta"][0])
    assert meta["exit_status"] == "Submitted" and meta["submission"].startswith("diff")
    calls = s.filter(pl.col("kind") == "tool_call")
    assert calls["tool_name"].unique().to_list() == ["bash"]
    assert json.loads(calls["tool_args"][1]) == {"command": "pytest tests/test_text.py -q"}
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["is_error"].to_list() == [False, True, False, False]  # from <returncode>
    # The format-error reply is kept as a user message, not a result.
    assert s.filter(pl.col("role") == "user")["content"].str.contains("EXACTLY ONE").any()


def test_mini_swe_agent_tool_call_format(lake: Lake):
    _, t, s = ingest_one(lake, FIXTURES / "acme__dates-7.traj.json")
    assert t["task_id"].to_list() == ["acme__dates-7"]
    assert t["model"].to_list() == ["deepseek/deepseek-chat"]
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["is_error"].to_list() == [True, False, True]
    assert results["call_step_idx"].to_list() == [2, 4, 6]
    assert "exit" not in s["role"].to_list()


def test_swe_agent(lake: Lake):
    _, t, s = ingest_one(lake, FIXTURES / "acme__csv-12.traj")
    assert t["task_id"].to_list() == ["acme__csv-12"] and t["model"].to_list() == ["gpt-4o"]
    assert s["role"].head(2).to_list() == ["system", "user"]  # the demonstration is skipped
    assert "demonstration" not in s["content"][1]
    calls = s.filter(pl.col("kind") == "tool_call")
    # `python reproduce.py` ran in the shell: a bash call, not a tool named python
    assert calls["tool_name"].to_list() == ["find_file", "bash", "edit", "submit"]
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["is_error"].to_list() == [False, True, False, False]  # the traceback
    assert json.loads(t["meta"][0])["exit_status"] == "submitted"


def test_claude_code(lake: Lake):
    _, t, s = ingest_one(lake, FIXTURES / "claude-session.jsonl")
    assert t["native_id"].to_list() == ["6f1c2a9e-0b7d-4c57-9a51-2f4b8f0d3e11"]
    assert t["model"].to_list() == ["claude-opus-4-5-20251101"]
    assert json.loads(t["meta"][0])["summary"] == "Fix failing cart total test"
    assert s["kind"].to_list() == [
        "message", "tool_call", "tool_result", "tool_call", "tool_result", "message",
    ]  # fmt: skip
    assert s["content"][1] == "I'll run the test suite."  # the text before the call
    assert s.filter(pl.col("kind") == "tool_result")["is_error"].to_list() == [True, False]
    assert s["content"][4].startswith("     1→def total")  # result given as blocks
    text = " ".join(s["content"].drop_nulls())
    assert "sub-agent chatter" not in text and "Caveat" not in text


def test_mapping_file(lake: Lake):
    summary, t, s = ingest_one(
        lake, FIXTURES / "custom-runs.json", format=f"mapping:{FIXTURES / 'custom-mapping.toml'}"
    )
    assert summary.exit_code == EXIT_PARTIAL  # the third run has no messages
    assert [(e.record, "without messages" in e.error) for e in summary.errors] == [
        ("data.runs[2]", True)
    ]
    assert t["native_id"].to_list() == ["s-1", "s-2"]
    assert t["outcome"].to_list() == ["success", "failure"]  # OK / CRASH via [outcomes]
    assert json.loads(t["meta"][1])["grader"] == {"gold_answer": "3C"}
    assert s.filter(pl.col("kind") == "tool_result")["is_error"].to_list() == [False, True]
    assert s.filter(pl.col("kind") == "tool_call")["tool_args"].to_list() == [
        '{"city":"Oslo"}', '{"city":"Tromsø"}'
    ]  # fmt: skip


def test_mapping_in_yaml_reads_the_same(lake: Lake, tmp_path: Path):
    import tomllib

    import yaml

    spec = tomllib.loads((FIXTURES / "custom-mapping.toml").read_text())
    yml = tmp_path / "m.yaml"
    yml.write_text(yaml.safe_dump(spec))
    _, t, _ = ingest_one(lake, FIXTURES / "custom-runs.json", mapping=yml)
    assert t["native_id"].to_list() == ["s-1", "s-2"]


def test_plain_react_log_without_trials(lake: Lake, tmp_path: Path):
    path = tmp_path / "react.log"
    path.write_text(
        "Question: Capital of France?\nThought 1: Search it.\nAction 1: Search[France]\n"
        "Observation 1: France is a country.\nIts capital is Paris.\nThought 2: Paris.\n"
        "Action 2: Finish[Paris]\nObservation 2: Answer is CORRECT\n\n"
        "Question: Capital of Mars?\nThought 1: Search it.\nAction 1: Search[Mars capital]\n"
        "Observation 1: Could not find [Mars capital]. Similar: ['Mars']\nThought 2: I give up.\n"
    )
    summary, t, s = ingest_one(lake, path)
    assert summary.files[0].format == "react-text"
    assert t["outcome"].to_list() == ["success", "unknown"]
    first = s.filter(pl.col("trajectory_id") == t["trajectory_id"][0])
    assert first["content"][2] == "France is a country.\nIts capital is Paris."
    second = s.filter(pl.col("trajectory_id") == t["trajectory_id"][1])
    assert second["kind"].to_list() == ["message", "tool_call", "tool_result", "message"]
    assert second["is_error"].to_list()[2]


def test_bad_mapping_files_are_named(lake: Lake, tmp_path: Path):
    from pipeline.ingest.run import IngestError

    bad = tmp_path / "m.toml"
    bad.write_text('[run]\nmessage = "turns"\n[message]\nrole = "r"\n[roles]\nx = "robot"\n')
    with pytest.raises(IngestError) as err:
        ingest_paths(lake, [FIXTURES / "custom-runs.json"], mapping=bad)
    text = str(err.value)
    assert "unknown key run.message" in text and "run.messages is required" in text
    assert "message.content is required" in text and "roles must map to" in text
    broken = tmp_path / "b.yaml"
    broken.write_text("run: [unclosed\n")
    with pytest.raises(IngestError, match="cannot be parsed"):
        ingest_paths(lake, [FIXTURES / "custom-runs.json"], mapping=broken)
