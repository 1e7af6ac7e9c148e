"""Episodes -> files, one writer per input format, laid out as the real tools lay them out.

Each writer takes one shard (a list of episodes) and writes its files; SWE formats and Claude
Code sessions get one file per run, and their outcomes (not part of those files, except for
attempts that share a task: see ``_instance``) go to a SWE-bench style ``report.json`` / a
``labels.csv`` written by ``write_synthetic``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipeline.ingest.formats.chat import chat_steps
from pipeline.ingest.synth.episode import Episode
from pipeline.ingest.synth.otel import otel_traces

_RC = re.compile(r"^<returncode>(-?\d+)</returncode>\n<output>\n(.*)\n</output>$", re.S)


def _record(e: Episode) -> dict:
    return {"id": e.run_id, "task_id": e.task_id, "model": e.model, "reward": e.reward,
            "outcome": e.outcome, "family": e.family, "trial": e.trial,
            "messages": e.messages, "grader": e.grader}  # fmt: skip


def openai_chat(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    path = out / f"runs-{shard:04d}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for e in episodes:
            fh.write(json.dumps(_record(e), ensure_ascii=False))
            fh.write("\n")
    return [path]


def tau_bench(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    folder = out / f"shard-{shard:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{episodes[0].model}-airline.json"  # tau-bench names files <model>-<domain>
    runs = [
        {"task_id": int(e.task_id.rsplit("-", 1)[1]), "trial": e.trial, "reward": e.reward,
         "info": {"task": {"instruction": e.grader["instruction"], "actions": e.grader["actions"],
                           "injected": e.grader["injected"]},
                  "source": "user", "user_cost": 0.0,
                  "reward_info": {"reward": e.reward, "info": {"r_actions": e.reward}}},
         "traj": e.messages}
        for e in episodes
    ]  # fmt: skip
    path.write_text(json.dumps(runs, ensure_ascii=False), encoding="utf-8")
    return [path]


def _split(content: str) -> tuple[int, str]:
    m = _RC.match(content)
    return (int(m.group(1)), m.group(2)) if m else (0, content)


def _instance(e: Episode) -> tuple[str, dict]:
    """The instance id a SWE file names, and what its ``info`` adds. Attempts that share a task
    share its instance id, which a report keyed by instance cannot tell apart: those files carry
    their outcome as ``info.resolved``, as evaluation logs merged into trajectories do."""
    if e.meta.get("shared_task"):
        return e.task_id, {"resolved": e.outcome == "success"}
    return e.run_id, {}


def mini_swe_agent(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    paths = []
    for e in episodes:
        folder = out / f"shard-{shard:04d}" / e.run_id
        folder.mkdir(parents=True, exist_ok=True)
        calls = sum(1 for m in e.messages if m["role"] == "assistant")
        instance, outcome = _instance(e)
        doc = {
            "info": {"model_stats": {"instance_cost": round(0.002 * calls, 4), "api_calls": calls},
                     "config": {"model": {"model_name": e.model}}, "mini_version": "2.2.7",
                     "exit_status": "Submitted", "submission": e.meta.get("submission", ""),
                     **outcome},
            "messages": [*e.messages, {"role": "exit", "content": e.meta.get("submission", "")}],
            "trajectory_format": "mini-swe-agent-1.1",
            "instance_id": instance,
        }  # fmt: skip
        path = folder / f"{e.run_id}.traj.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def swe_agent(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    paths = []
    for e in episodes:
        folder = out / f"shard-{shard:04d}" / e.run_id
        folder.mkdir(parents=True, exist_ok=True)
        steps, msgs = [], e.messages
        for i, m in enumerate(msgs):
            if m["role"] == "assistant" and m.get("tool_calls"):
                action = json.loads(m["tool_calls"][0]["function"]["arguments"])["command"]
                _, observation = _split(msgs[i + 1]["content"])
                steps.append({"action": action, "observation": observation, "thought": m["content"] or "",
                              "response": m["content"] or "", "state": {}, "execution_time": 0.1,
                              "query": [], "extra_info": {}})  # fmt: skip
        instance, outcome = _instance(e)
        replay = {"agent": {"model": {"name": e.model}}, "problem_statement": {"id": instance}}
        doc = {"trajectory": steps,
               "history": [{"role": m["role"], "content": m["content"], "agent": "main"} for m in msgs[:2]],
               "info": {"exit_status": "submitted", "submission": e.meta.get("submission", ""),
                        "model_stats": {"api_calls": len(steps)}, **outcome},
               "replay_config": json.dumps(replay), "environment": "main"}  # fmt: skip
        path = folder / f"{e.run_id}.traj"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def claude_code(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    folder = out / f"shard-{shard:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in episodes:
        session = e.run_id
        base = {
            "sessionId": session,
            "cwd": "/home/dev/repo",
            "version": "2.1.12",
            "isSidechain": False,
        }
        lines, parent = [], None
        for i, m in enumerate(e.messages):
            uid = str(uuid.UUID(int=hash_int(session, i)))
            if m["role"] == "user":
                entry = {"type": "user", "message": {"role": "user", "content": m["content"]}}
            elif m["role"] == "assistant":
                blocks = [{"type": "text", "text": m["content"]}] if m["content"] else []
                for call in m.get("tool_calls") or []:
                    args = json.loads(call["function"]["arguments"])
                    blocks.append({"type": "tool_use", "id": call["id"], "name": "Bash",
                                   "input": {**args, "description": "Run a command"}})  # fmt: skip
                entry = {"type": "assistant", "message": {"model": e.model, "id": f"msg_{i}",
                         "role": "assistant", "content": blocks}}  # fmt: skip
            elif m["role"] == "tool":
                code, text = _split(m["content"])
                entry = {"type": "user", "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": text,
                     "is_error": code != 0}]}}  # fmt: skip
            else:
                continue  # the system prompt is not part of a transcript
            lines.append(
                json.dumps({**base, **entry, "uuid": uid, "parentUuid": parent}, ensure_ascii=False)
            )
            parent = uid
        path = folder / f"{session}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def react_text(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    """Reflexion-style log: trials of CORRECT / INCORRECT / HALTED sections, solved runs
    reprinted in every later trial (episodes come in trial order)."""
    trials: dict[int, list[Episode]] = {}
    for e in episodes:
        trials.setdefault(e.trial, []).append(e)
    solved: list[Episode] = []
    parts = []
    for t in sorted(trials):
        sections = {"CORRECT": list(solved), "INCORRECT": [], "HALTED": []}
        for e in trials[t]:
            sections[e.meta["section"]].append(e)
        solved += [e for e in trials[t] if e.meta["section"] == "CORRECT"]
        counts = {k: len(v) for k, v in sections.items()}
        parts.append(f"{'#' * 40}\nBEGIN TRIAL {t + 1}\nTrial summary: Correct: {counts['CORRECT']}, "
                     f"Incorrect: {counts['INCORRECT']}, Halted: {counts['HALTED']}\n{'#' * 39}\n")  # fmt: skip
        for name, dashes in (
            ("CORRECT", "-------------"),
            ("INCORRECT", "-----------"),
            ("HALTED", "--------------"),
        ):
            parts.append(f"------------- BEGIN {name} AGENTS {dashes}\n\n")
            parts += [_react_run(e) for e in sections[name]]
    path = out / f"log-{shard:04d}.txt"
    path.write_text("".join(parts), encoding="utf-8")
    return [path]


def _react_run(e: Episode) -> str:
    lines = [e.messages[0]["content"]]
    n = 0
    for i, m in enumerate(e.messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            n += 1
            fn = m["tool_calls"][0]["function"]
            arg = next(iter(json.loads(fn["arguments"]).values()))
            lines += [f"Thought {n}: {m['content']}", f"Action {n}: {fn['name']}[{arg}]",
                      f"Observation {n}: {e.messages[i + 1]['content']}"]  # fmt: skip
    lines.append(f"Correct answer: {e.grader['correct_answer']}\n\n")
    return "\n".join(lines)


def parquet(shard: int, episodes: list[Episode], out: Path) -> list[Path]:
    cols = ("role", "kind", "content", "tool_name", "tool_args", "tool_call_id", "call_step_idx",
            "is_error", "message_idx")  # fmt: skip
    rows: dict[str, list] = {c: [] for c in ("trajectory_id", "step_idx", *cols)}
    for e in episodes:
        for idx, step in enumerate(chat_steps(e.messages).steps):
            rows["trajectory_id"].append(e.run_id)
            rows["step_idx"].append(idx)
            for c, v in zip(cols, step, strict=True):
                rows[c].append(v)
    steps_path = out / f"steps-{shard:04d}.parquet"
    runs_path = out / f"trajectories-{shard:04d}.parquet"
    pl.DataFrame(rows).write_parquet(steps_path)
    pl.DataFrame({
        "trajectory_id": [e.run_id for e in episodes], "task_id": [e.task_id for e in episodes],
        "model": [e.model for e in episodes], "agent": [e.family for e in episodes],
        "outcome": [e.outcome for e in episodes], "reward": [e.reward for e in episodes],
        "meta": [json.dumps({"trial": e.trial, "grader": e.grader}) for e in episodes],
    }).write_parquet(runs_path)  # fmt: skip
    return [steps_path, runs_path]


def hash_int(*parts) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=16).digest(), "big")


WRITERS: dict[str, Callable[[int, list[Episode], Path], list[Path]]] = {
    "openai-chat": openai_chat,
    "tau-bench": tau_bench,
    "mini-swe-agent": mini_swe_agent,
    "swe-agent": swe_agent,
    "claude-code": claude_code,
    "otel": otel_traces,
    "react-text": react_text,
    "parquet": parquet,
}
