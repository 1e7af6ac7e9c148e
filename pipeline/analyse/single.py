"""The `single` analyst: one model call per trajectory, through the model layer's batched map.

Reads each run of a batch (its `trajectories` row and `steps`); the map writes what it returns.
The request: the prompt ``single-v<N>.md`` with the task of the run's case (failure, success, or
judge-then-analyse when the outcome is unknown), the base skill's sections with their text when
deepening, and the run rendered within `render_tokens` or what the context window leaves
(redacted, the grader's view marked as hidden from the agent); the answer: at most `max_lessons`
lessons as a JSON schema (shaped as the endpoint takes it), validated by the model layer, which
asks once more with the validation error before giving up. A prompt the server finds too long is
rendered shorter once, by what its error says. A failed call (after the layer's retries), an
answer still invalid after that repair or cut at its limit, a prompt too long even when shorter,
a spent budget, or an answer whose every lesson is rejected is an error row naming its kind.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.analyse.analyst import Batch, Outcome, error_reason, now
from pipeline.analyse.model_analyst import ModelAnalyst, PromptTooLong, case_of, usage_of
from pipeline.analyse.render import render_trajectory
from pipeline.llm import ChatRequest, ChatResult

STAGE = "analyse"


class SingleAnalyst(ModelAnalyst):
    name = "single"
    prompt_name = "single"

    def request(
        self, row: dict[str, Any], steps: pl.DataFrame, budget: int | None = None
    ) -> tuple[ChatRequest, int]:
        """The one request for a run, and the run's render budget in it."""
        case = case_of(row.get("outcome"))
        skill = self.skill_block(with_text=True)
        if budget is None:
            frame = self.prompt.messages(**self.values(case, "", skill))
            budget = self.run_budget(sum(len(m["content"]) for m in frame))
        trajectory = render_trajectory(row, steps, budget_tokens=budget)
        values = self.values(case, trajectory, skill)
        request = ChatRequest(
            messages=self.prompt.messages(**values),
            response_model=self.answer_type(case),
            max_tokens=self.answer_tokens,
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=row["trajectory_id"],
        )
        return request, budget

    def analyse_batch(self, batch: Batch) -> list[Outcome]:
        if self.llm is None:
            raise RuntimeError("SingleAnalyst.prepare must run before analyse_batch")
        started = now()
        items = list(batch.items())
        outcomes: dict[int, Outcome] = {}
        requests, budgets, slots = [], [], []
        for i, (row, steps) in enumerate(items):
            try:
                request, budget = self.request(row, steps)
                requests.append(request)
                budgets.append(budget)
                slots.append(i)
            except PromptTooLong as exc:
                outcomes[i] = Outcome(row["trajectory_id"], error=f"[context] {exc}")
                self.tick()
            except Exception as exc:  # a run that cannot be rendered fails alone
                outcomes[i] = Outcome(row["trajectory_id"], error=error_reason(exc))
                self.tick()
        results: list[ChatResult] = self.run(self.llm.amap(requests)) if requests else []
        results = self._fit_again(items, slots, budgets, results)
        for i, result in zip(slots, results, strict=True):
            row, steps = items[i]
            outcomes[i] = self.read(row, steps, result, started)
        return [outcomes[i] for i in range(len(items))]

    def _fit_again(self, items, slots, budgets, results: list[ChatResult]) -> list[ChatResult]:
        """Runs whose prompt the server found too long, rendered shorter and asked once more."""
        over = [k for k, r in enumerate(results) if r.error_kind == "context"]
        if not over:
            return results
        again, where = [], []
        for k in over:
            row, steps = items[slots[k]]
            smaller = self.shrink(budgets[k], results[k].context)
            if smaller < 50:
                continue
            again.append(self.request(row, steps, smaller)[0])
            where.append(k)
        answers = self.run(self.llm.amap(again)) if again else []
        results = list(results)
        for k, answer in zip(where, answers, strict=True):
            first = results[k]
            if answer.error_kind == "context":
                n, m = answer.context or first.context or (None, None)
                answer.error = (
                    f"the prompt does not fit the context window even rendered shorter: "
                    f"{n or '?'} tokens asked, {m or '?'} available ({answer.error})"
                )
            answer.tokens_in += first.tokens_in
            results[k] = answer
        return results

    def read(
        self, row: dict[str, Any], steps: pl.DataFrame, result: ChatResult, started
    ) -> Outcome:
        usage = usage_of(result)
        tid = row["trajectory_id"]
        if not result.ok or result.parsed is None:
            reason = result.error or "the model gave no answer"
            kind = f"[{result.error_kind}] " if result.error_kind else ""
            return Outcome(tid, [], usage, f"model call failed: {kind}{reason}", started, now())
        try:
            return self.finish(
                row, steps, case_of(row.get("outcome")), result.parsed, usage, started
            )
        except Exception as exc:
            return Outcome(tid, [], usage, error_reason(exc), started, now())
