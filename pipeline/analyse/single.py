"""The `single` analyst: one model call per trajectory, through the model layer's batched map.

Reads each run of a batch (its `trajectories` row and `steps`); the map writes what it returns.
The request: the prompt ``single-v<N>.md`` with the task of the run's case (failure, success, or
judge-then-analyse when the outcome is unknown), the base skill's sections with their text when
deepening, and the run rendered within `render_tokens` (redacted, the grader's view marked as
hidden from the agent); the answer: at most `max_lessons` lessons as a JSON schema
(``response_format``), validated by the model layer, which asks once more with the validation
error before giving up. A failed call (after the layer's retries), an answer still invalid after
that repair, a spent budget, or an answer whose every lesson is rejected is an error row.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.analyse.analyst import Batch, Outcome, error_reason, now
from pipeline.analyse.model_analyst import ModelAnalyst, case_of, usage_of
from pipeline.analyse.render import render_trajectory
from pipeline.llm import ChatRequest, ChatResult

STAGE = "analyse"


class SingleAnalyst(ModelAnalyst):
    name = "single"
    prompt_name = "single"

    def request(self, row: dict[str, Any], steps: pl.DataFrame) -> ChatRequest:
        """The one request for a run."""
        case = case_of(row.get("outcome"))
        trajectory = render_trajectory(row, steps, budget_tokens=self.render_tokens)
        values = self.values(case, trajectory, self.skill_block(with_text=True))
        return ChatRequest(
            messages=self.prompt.messages(**values),
            response_model=self.answer_type(case),
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=row["trajectory_id"],
        )

    def analyse_batch(self, batch: Batch) -> list[Outcome]:
        if self.llm is None:
            raise RuntimeError("SingleAnalyst.prepare must run before analyse_batch")
        started = now()
        items = list(batch.items())
        outcomes: dict[int, Outcome] = {}
        requests, slots = [], []
        for i, (row, steps) in enumerate(items):
            try:
                requests.append(self.request(row, steps))
                slots.append(i)
            except Exception as exc:  # a run that cannot be rendered fails alone
                outcomes[i] = Outcome(row["trajectory_id"], error=error_reason(exc))
                self.tick()
        results: list[ChatResult] = self.run(self.llm.amap(requests)) if requests else []
        for i, result in zip(slots, results, strict=True):
            row, steps = items[i]
            outcomes[i] = self.read(row, steps, result, started)
        return [outcomes[i] for i in range(len(items))]

    def read(
        self, row: dict[str, Any], steps: pl.DataFrame, result: ChatResult, started
    ) -> Outcome:
        usage = usage_of(result)
        tid = row["trajectory_id"]
        if not result.ok or result.parsed is None:
            reason = result.error or "the model gave no answer"
            return Outcome(tid, [], usage, f"model call failed: {reason}", started, now())
        try:
            return self.finish(
                row, steps, case_of(row.get("outcome")), result.parsed, usage, started
            )
        except Exception as exc:
            return Outcome(tid, [], usage, error_reason(exc), started, now())
