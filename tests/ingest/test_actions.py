"""Which assistant text is an action: readers of text formats record a tool call only where the
agent's own parser found one (mini-swe-agent, SWE-agent, ReAct logs); prose stays a message."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake

TASK = {"role": "user", "content": "Fix the bug."}
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def steps_of(lake: Lake, path: Path) -> pl.DataFrame:
    ingest_paths(lake, [path])
    return lake.read("steps").sort("step_idx")


def mini_run(tmp_path: Path, messages: list, **doc) -> Path:
    path = tmp_path / "demo__repo-1.traj.json"
    doc = {"info": {"exit_status": "Submitted"}, "trajectory_format": "mini-swe-agent-1", **doc}
    path.write_text(json.dumps({**doc, "messages": [SYSTEM, TASK, *messages]}))
    return path


def commands(steps: pl.DataFrame) -> list[str]:
    calls = steps.filter(pl.col("kind") == "tool_call")
    return [json.loads(a)["command"] for a in calls["tool_args"]]


def test_prose_between_two_fences_is_not_a_command(lake: Lake, tmp_path: Path):
    reply = (
        "THOUGHT: The fix is in.\n\n```python\nx = 1\n```\n\n"
        "No changes needed beyond this.\n\n```text\ndone\n```"
    )
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Please always provide EXACTLY ONE action in triple backticks, found 0 actions."},
    ]))  # fmt: skip
    assert commands(s) == []
    assert s["kind"].to_list() == ["message"] * 4
    assert s["role"].to_list() == ["system", "user", "assistant", "user"]


def test_two_bash_blocks_run_nothing_and_the_format_error_is_a_message(lake: Lake, tmp_path: Path):
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "First:\n```bash\nls\n```\nthen:\n```bash\npwd\n```"},
        {"role": "user", "content": "Please always provide EXACTLY ONE action in triple backticks, found 2 actions."},
        {"role": "assistant", "content": "THOUGHT: One at a time.\n\n```bash\nls -la\n```"},
        {"role": "user", "content": "<returncode>0</returncode>\n<output>\nsetup.py\n</output>"},
    ]))  # fmt: skip
    assert commands(s) == ["ls -la"]
    assert s["kind"].to_list()[2:] == ["message", "message", "tool_call", "tool_result"]
    assert s["content"][3].startswith("Please always provide EXACTLY ONE")
    result = s.row(5, named=True)
    assert result["call_step_idx"] == 4 and result["is_error"] is False


def test_one_bash_block_is_a_call_and_the_next_user_message_its_output(lake: Lake, tmp_path: Path):
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "THOUGHT: Run it.\n\n```bash\n  python reproduce.py\n```"},
        {"role": "user", "content": "The last command <command>python reproduce.py</command> timed out and has been killed."},
        {"role": "assistant", "content": "THOUGHT: Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff\n```"},
        {"role": "user", "content": "diff --git a/x.py b/x.py\n+fixed"},
    ]))  # fmt: skip
    assert commands(s) == [
        "python reproduce.py", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff",
    ]  # fmt: skip
    results = s.filter(pl.col("kind") == "tool_result")
    assert results["call_step_idx"].to_list() == [2, 4]
    assert results["is_error"].to_list() == [True, False]  # the timeout; the submitted diff


def test_only_a_python_block_is_no_call(lake: Lake, tmp_path: Path):
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "Here is the fix:\n```python\nprint('x')\n```"},
    ]))  # fmt: skip
    assert commands(s) == [] and s["kind"].to_list()[-1] == "message"


def test_the_submission_marker_alone_is_a_call(lake: Lake, tmp_path: Path):
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "```bash\necho MINI_SWE_AGENT_FINAL_OUTPUT\n```"},
    ]))  # fmt: skip
    assert commands(s) == ["echo MINI_SWE_AGENT_FINAL_OUTPUT"]


def test_v2_text_runs_use_their_own_fence_and_recorded_actions(lake: Lake, tmp_path: Path):
    messages = [
        {"role": "assistant", "content": "```bash\nls\n```"},  # not v2's fence: ran nothing
        {"role": "user", "content": "Please always provide EXACTLY ONE action in triple backticks, found 0 actions."},
        {"role": "assistant", "content": "```mswea_bash_command\ncat a.py\n```"},
        {"role": "user", "content": "<returncode>1</returncode>\n<output>\nno such file\n</output>"},
        {"role": "assistant", "content": "Next.", "extra": {"actions": [{"command": "ls /src"}]}},
        {"role": "user", "content": "<returncode>0</returncode>\n<output>\na.py\n</output>"},
        {"role": "exit", "content": ""},
    ]  # fmt: skip
    s = steps_of(lake, mini_run(tmp_path, messages, trajectory_format="mini-swe-agent-1.1"))
    assert commands(s) == ["cat a.py", "ls /src"]
    assert s.filter(pl.col("kind") == "tool_result")["is_error"].to_list() == [True, False]


def test_a_run_configured_with_its_own_action_regex(lake: Lake, tmp_path: Path):
    config = {"agent": {"action_regex": r"<cmd>\s*(.*?)\s*</cmd>"}}
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "```bash\nls\n``` is wrong here; <cmd> pwd </cmd>"},
    ], info={"config": config}))  # fmt: skip
    assert commands(s) == ["pwd"]


def test_a_v2_tool_call_run_keeps_its_calls(lake: Lake, tmp_path: Path):
    call = {"id": "c1", "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"command": "ls"})}}  # fmt: skip
    s = steps_of(lake, mini_run(tmp_path, [
        {"role": "assistant", "content": "No changes needed yet.\n```\nprose\n```", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "<returncode>0</returncode>\n<output>\n</output>"},
        {"role": "assistant", "content": "I am done thinking."},
        {"role": "user", "content": "No tool calls found in the response."},
    ], trajectory_format="mini-swe-agent-1.1"))  # fmt: skip
    assert commands(s) == ["ls"]
    assert s["kind"].to_list()[2:] == ["tool_call", "tool_result", "message", "message"]


def swe_run(tmp_path: Path, actions: list[str], system: str = "SETTING: ...") -> Path:
    path = tmp_path / "demo__repo-2.traj"
    trajectory = [{"action": a, "observation": "ok", "thought": "t", "response": "t"}
                  for a in actions]  # fmt: skip
    history = [{"role": "system", "content": system}, {"role": "user", "content": "Fix it."}]
    path.write_text(json.dumps({"trajectory": trajectory, "history": history, "info": {}}))
    return path


def tools(steps: pl.DataFrame) -> list[str]:
    return steps.filter(pl.col("kind") == "tool_call")["tool_name"].to_list()


def test_swe_agent_shell_actions_are_bash_and_commands_keep_their_name(lake: Lake, tmp_path: Path):
    actions = ["cd /testbed && python reproduce.py", "str_replace_editor view /testbed/a.py",
               "python -m pytest -q", "submit"]  # fmt: skip
    s = steps_of(lake, swe_run(tmp_path, actions))
    assert tools(s) == ["bash", "str_replace_editor", "bash", "submit"]
    assert commands(s) == actions  # the whole action line, for any tool


def test_swe_agent_commands_documented_in_the_system_prompt(lake: Lake, tmp_path: Path):
    prompt = (
        "COMMANDS:\nreview:\n  docstring: shows the diff\n  signature: review\n\n"
        "open:\n  docstring: opens a file\n"
    )
    s = steps_of(lake, swe_run(tmp_path, ["review", "open a.py", "grep -rn x ."], prompt))
    assert tools(s) == ["review", "open", "bash"]


def test_swe_agent_step_without_an_action_is_a_message(lake: Lake, tmp_path: Path):
    s = steps_of(lake, swe_run(tmp_path, ["", "ls"]))
    assert s["kind"].to_list() == ["message", "message", "message", "tool_call", "tool_result"]


def test_react_free_text_action_names_no_tool(lake: Lake, tmp_path: Path):
    path = tmp_path / "react.log"
    path.write_text(
        "Question: Capital of France?\nThought 1: Search it.\n"
        "Action 1: I should look up France first.\n"
        "Observation 1: Invalid Action. Valid Actions are Lookup[<topic>] Search[<topic>] and "
        "Finish[<answer>].\nThought 2: Right.\nAction 2: Search[France]\n"
        "Observation 2: France is a country.\nThought 3: Paris.\nAction 3: Finish[Paris]\n"
        "Observation 3: Answer is CORRECT\n"
    )
    s = steps_of(lake, path)
    assert tools(s) == ["Search", "Finish"]
    assert s["kind"].to_list()[:3] == ["message", "message", "message"]
    assert s["content"][1] == "Search it.\nI should look up France first."
    assert s["role"][2] == "user" and s["content"][2].startswith("Invalid Action")
    assert s.filter(pl.col("kind") == "tool_result")["call_step_idx"].to_list() == [3, 5]
