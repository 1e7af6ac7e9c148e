"""The demo lake of the report tests: both demo sources distilled as `make distill` and
`make distill-hotpotqa` do, plus a held-out split and a few runs analysed by a model.

    ingest       data/tau-bench-airline/gpt-4o-airline.json       source tau-bench-airline
                 data/reflexion-hotpotqa/100_questions_5_trials.txt source reflexion-hotpotqa
    analyse      miner: every run (the airline runs against the base skill's sections, as
                 `make distill` does)
                 single, through the loopback server: the runs of tau-bench tasks 0-2 (MODEL_WHERE),
                 one lesson per run grounded in its first booking-changing call; one request
                 faulted with a 500 (retried), one run answering out of schema twice (an error
                 row); then the single analyst's output is removed and the same command run
                 again: every answered request comes from the cache, the error row is retried
    consolidate  in this order, so the last is the newest run (the one `latest_*` views show):
                 AIRLINE  every airline run, deepening the base skill -> out/airline-agent-policy
                 HOTPOTQA the ReAct runs, a new skill -> out/hotpotqa-react-search
                 SPLIT    airline runs of tasks < 35 (HELD_OUT is the rest), deepening the base
                          skill -> out/airline-split

Everything but the model calls' latency and the consolidations' timestamps is deterministic, so
queries over this lake can be compared with golden files.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.analyse.run import analyse
from pipeline.consolidate.run import consolidate
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from tests.analyse.scripted import steps_of, trajectory_of
from tests.loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
AIRLINE_RUNS = DATA / "tau-bench-airline" / "gpt-4o-airline.json"
HOTPOTQA_RUNS = DATA / "reflexion-hotpotqa" / "100_questions_5_trials.txt"
BASE_SKILL = DATA / "tau-bench-airline" / "base-skill"

AIRLINE = "source = 'tau-bench-airline'"
HOTPOTQA = "source = 'reflexion-hotpotqa'"
SPLIT = "source = 'tau-bench-airline' and try_cast(task_id as integer) < 35"
HELD_OUT = "source = 'tau-bench-airline' and try_cast(task_id as integer) >= 35"
MODEL_WHERE = "source = 'tau-bench-airline' and task_id in ('0', '1', '2')"
MODEL = "loopback-model"
PRICES = {MODEL: (1.0, 2.0)}  # USD per million tokens in / out

# The calls that change a booking, and the section of the base skill each belongs to.
SECTIONS = {
    "book_reservation": "Book flight",
    "update_reservation_flights": "Modify flight",
    "update_reservation_baggages": "Modify flight",
    "update_reservation_passengers": "Modify flight",
    "cancel_reservation": "Cancel flight",
    "send_certificate": "Refund",
}


@dataclass
class Demo:
    lake: Lake
    out: Path  # the folder holding the skill folders
    runs: dict[str, str]  # "split" / "hotpotqa" / "airline" -> consolidation run id
    faulted: str  # trajectory whose first request got a 500
    invalid: str  # trajectory whose answers broke the schema in the first pass

    def skill(self, name: str) -> Path:
        return (
            self.out
            / {
                "split": "airline-split",
                "hotpotqa": "hotpotqa-react-search",
                "airline": "airline-agent-policy",
            }[name]
        )


def build(root: Path) -> Demo:
    lake = Lake(root / "lake")
    out = root / "out"
    summary = ingest_paths(lake, [AIRLINE_RUNS, HOTPOTQA_RUNS])
    assert summary.exit_code == 0, summary.errors
    analyse(lake, analyst="miner", base_skill=BASE_SKILL, where=AIRLINE, workers=1)
    analyse(lake, analyst="miner", where=HOTPOTQA, workers=1)
    faulted, invalid = _model_passes(lake)
    runs = {
        "airline": consolidate(
            lake, base_skill=BASE_SKILL, out_dir=out / "airline-agent-policy", where=AIRLINE
        ).run_id,
        "hotpotqa": consolidate(lake, out_dir=out / "hotpotqa-react-search", where=HOTPOTQA).run_id,
        "split": consolidate(
            lake, base_skill=BASE_SKILL, out_dir=out / "airline-split", where=SPLIT
        ).run_id,
    }
    return Demo(lake, out, runs, faulted, invalid)


def _model_passes(lake: Lake) -> tuple[str, str]:
    """The single analyst on MODEL_WHERE, twice; returns the faulted and the invalid run."""
    picked = (
        pl.SQLContext(t=lake.read("trajectories"))
        .execute(f"select trajectory_id from t where {MODEL_WHERE} order by trajectory_id")
        .collect()["trajectory_id"]
        .to_list()
    )
    calls = _first_changes(lake, picked)
    faulted, invalid = picked[0], picked[1]
    seen: Counter = Counter()

    def responder(body: dict) -> dict:
        tid = trajectory_of(body)
        seen[tid] += 1
        if tid == invalid and seen[tid] <= 2:
            return {"lessons": [{"kind": "failure_lesson", "title": "short"}]}
        if tid not in calls:  # the agent answered without a tool call
            return {"lessons": [_no_call_lesson(body)]}
        return {"lessons": [_lesson(body, calls[tid])]}

    with Loopback() as server:
        server.responder = responder
        server.fail("500", times=1, match=lambda body: trajectory_of(body) == faulted)
        settings = server.settings(concurrency=4, prices=PRICES)
        first = analyse(lake, settings=settings, base_skill=BASE_SKILL, where=MODEL_WHERE)
        assert (first.n_analysed, first.n_failed) == (len(picked) - 1, 1), first
        # Start the model analysis again from nothing: what was answered costs nothing now.
        for table in ("lessons", "analyses"):
            single = [p for p in lake.parts(table) if Path(p).name.startswith("part-single-")]
            assert single, f"no parts of the single analyst in {table}"
            lake.delete_parts(table, single)
        second = analyse(lake, settings=settings, base_skill=BASE_SKILL, where=MODEL_WHERE)
        assert (second.n_analysed, second.n_failed) == (len(picked), 0), second
        assert second.usage.cache_hits == len(picked) - 1, second.usage
    return faulted, invalid


def _first_changes(lake: Lake, trajectory_ids: list[str]) -> dict[str, dict]:
    """Per run, its first call that changes a booking (else its first call) and the result."""
    calls = (
        lake.read("steps")
        .filter(pl.col("trajectory_id").is_in(trajectory_ids) & (pl.col("kind") == "tool_call"))
        .with_columns(changes=pl.col("tool_name").is_in(list(SECTIONS)))
        .sort("trajectory_id", pl.col("changes"), "step_idx", descending=[False, True, False])
        .group_by("trajectory_id", maintain_order=True)
        .first()
    )
    return {r["trajectory_id"]: r for r in calls.iter_rows(named=True)}


def _lesson(body: dict, call: dict) -> dict:
    tool, step = call["tool_name"], call["step_idx"]
    failed = "This run FAILED" in body["messages"][0]["content"]
    args = json.loads(call["tool_args"] or "{}")
    named = ", ".join(sorted(args)) or "no arguments"
    return {
        "kind": "failure_lesson" if failed else "success_lesson",
        "title": f"Read the {tool} details back to the user and wait for a yes before calling it",
        "description": f"any {tool} request",
        "content": (
            f"At step {step} the agent called {tool} ({named}); "
            + (
                "the user had not confirmed these details, and the run failed."
                if failed
                else "it had listed the details and the user had said yes."
            )
        ),
        "target_section": SECTIONS.get(tool, "Domain Basic"),
        "op": "add",
        "evidence_steps": [step],
        "tool_name": tool,
        "confidence": 0.8 if failed else 0.7,
    }


def _no_call_lesson(body: dict) -> dict:
    last = steps_of(body)[-1]
    return {
        "kind": "failure_lesson",
        "title": "Look the user and the reservation up with the tools before answering",
        "description": "any request about an existing reservation",
        "content": f"The agent answered from the conversation alone and ended at step {last} "
        "without a single tool call.",
        "target_section": "Domain Basic",
        "op": "add",
        "evidence_steps": [last],
        "tool_name": None,
        "confidence": 0.6,
    }
