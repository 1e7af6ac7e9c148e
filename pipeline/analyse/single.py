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

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import polars as pl

from pipeline.analyse.analyst import AnalysisResult, Batch, error_reason, now
from pipeline.analyse.model_analyst import ModelAnalyst, PromptTooLong, case_of, usage_of
from pipeline.analyse.render import render_trajectory
from pipeline.llm import ChatRequest, ChatResult

STAGE = "analyse"
K = TypeVar("K")
LEAD = 4  # runs rendered ahead, in multiples of the concurrency
IDLE_YIELDS = 64  # most turns `_idle` leaves to other callbacks before it goes on anyway


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
            choices=self.choices(steps),
            max_tokens=self.answer_tokens,
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=row["trajectory_id"],
        )
        return request, budget

    def analyse_batch(self, batch: Batch) -> list[AnalysisResult]:
        if self.llm is None:
            raise RuntimeError("SingleAnalyst.prepare must run before analyse_batch")
        started = now()
        items = list(batch.items())
        outcomes: dict[int, AnalysisResult] = {}
        requests, budgets, slots = [], [], []
        for i, (row, steps) in enumerate(items):
            try:
                request, budget = self.request(row, steps)
                requests.append(request)
                budgets.append(budget)
                slots.append(i)
            except PromptTooLong as exc:
                outcomes[i] = AnalysisResult(row["trajectory_id"], error=f"[context] {exc}")
                self.tick()
            except Exception as exc:  # a run that cannot be rendered fails alone
                outcomes[i] = AnalysisResult(row["trajectory_id"], error=error_reason(exc))
                self.tick()
        results: list[ChatResult] = self.run(self.llm.amap(requests)) if requests else []
        results = self._fit_again(items, slots, requests, budgets, results)
        for i, result in zip(slots, results, strict=True):
            row, steps = items[i]
            outcomes[i] = self.read(row, steps, result, started)
        return [outcomes[i] for i in range(len(items))]

    def _fit_again(self, items, slots, requests, budgets, results: list[ChatResult]):
        """Runs whose prompt the server found too long, rendered anew and asked once more."""
        over = [k for k, r in enumerate(results) if r.error_kind == "context"]
        again, where = [], []
        for k in over:
            row, steps = items[slots[k]]
            request = self.refit(row, steps, requests[k], budgets[k], results[k])
            if request is not None:
                again.append(request)
                where.append(k)
        answers = self.run(self.llm.amap(again)) if again else []
        results = list(results)
        for k, answer in zip(where, answers, strict=True):
            results[k] = refitted(results[k], answer)
        return results

    def refit(
        self, row, steps, request: ChatRequest, budget: int, result: ChatResult
    ) -> ChatRequest | None:
        """The run's request made again for the window and the token count that the server's
        error gave (the skill's text and the run both shrink); None if it cannot be smaller."""
        chars = sum(len(str(x.get("content") or "")) for x in request.messages)
        self.learn_window_from(result, chars)
        try:
            again, fitted = self.request(row, steps)
        except PromptTooLong:
            return None
        if fitted >= budget:  # the error told nothing new: cut by how much it was over
            fitted = self.shrink(budget, result.context)
            if fitted < 50:
                return None
            again = self.request(row, steps, fitted)[0]
        return again

    def analyse_stream(
        self,
        batches: Iterable[tuple[K, Batch]],
        done: Callable[[K, Batch, list[AnalysisResult]], bool],
    ) -> None:
        """Analyse `batches` as one stream of requests; `done(key, batch, outcomes)` is called for
        each batch, in order, once all its runs are answered, and returns True to stop. On a stop,
        the runs of later batches still in flight are abandoned (what was answered stays in
        llm_calls for the next run).

        The same requests and outcomes as `analyse_batch` batch after batch, but the model is
        never left waiting for a batch boundary (the last, partial wave of one batch, writing its
        parts, rendering the next), and runs are rendered ahead while the event loop is idle
        rather than between an answer and the next request."""
        if self.llm is None:
            raise RuntimeError("SingleAnalyst.prepare must run before analyse_stream")
        if self.model_settings.batch:  # the server's batch API: one job per batch
            for key, batch in batches:
                if done(key, batch, self.analyse_batch(batch)):
                    return
            return
        try:
            self.run(self._stream(iter(batches), done))
        except _Stop:
            pass

    async def _stream(self, batches, done) -> None:
        llm = self.llm
        loop = asyncio.get_running_loop()
        width = llm.width()  # a request waits for a slot rendered for the window known then
        ready: asyncio.Queue = asyncio.Queue(maxsize=LEAD * width)  # rendered, waiting for a slot
        pending: deque[_Pending] = deque()  # batches not yet handed to `done`, in order
        wake = asyncio.Event()  # housekeeping is due
        state = {"in_flight": 0, "consumers": width}

        def settle() -> None:
            while pending and pending[0].left == 0:
                b = pending.popleft()
                if done(b.key, b.batch, b.outcomes):
                    raise _Stop

        def render(b: _Pending, i: int, row, steps) -> tuple[ChatRequest, int] | None:
            """The run's request and render budget; None once a run that cannot be rendered
            has its error outcome (it fails alone)."""
            try:
                return self.request(row, steps)
            except PromptTooLong as exc:
                b.put(i, AnalysisResult(row["trajectory_id"], error=f"[context] {exc}"))
            except Exception as exc:
                b.put(i, AnalysisResult(row["trajectory_id"], error=error_reason(exc)))
            self.tick()
            return None

        async def produce() -> None:
            for key, batch in batches:
                if self.stop_reason() is not None:
                    break  # the budget is spent: the map stops after the batch in flight
                b = _Pending(key, batch, now())
                pending.append(b)
                for i, (row, steps) in enumerate(batch.items()):
                    await _idle(loop)
                    if (rendered := render(b, i, row, steps)) is not None:
                        await ready.put((b, i, row, steps, *rendered, self.context_tokens))
                wake.set()  # a batch none of whose runs reached the model is done already
            for _ in range(width):
                await ready.put(None)

        async def consume() -> None:
            while (item := await ready.get()) is not None:
                b, i, row, steps, req, budget, window = item
                if b is not pending[0] and self.stop_reason() is not None:
                    continue  # a later batch than the one in flight when the budget ran out
                if window != self.context_tokens:  # rendered before an error told the window
                    if (rendered := render(b, i, row, steps)) is None:
                        continue
                    req, budget = rendered
                state["in_flight"] += 1
                if state["in_flight"] == width:
                    wake.set()
                try:
                    result = await llm.achat(req)
                    if result.error_kind == "context":
                        smaller = self.refit(row, steps, req, budget, result)
                        if smaller is not None:
                            result = refitted(result, await llm.achat(smaller))
                finally:
                    state["in_flight"] -= 1
                await asyncio.sleep(0)  # the next request goes out before this answer is read
                b.put(i, self.read(row, steps, result, b.started))
                self.tick()
                if ready.empty():
                    wake.set()  # no request waiting: the slots may not all fill again
            state["consumers"] -= 1
            wake.set()

        async def keep_house() -> None:
            """Write the batches answered in full and flush the call log when every slot is
            taken (nothing can be sent before an answer comes back, so this delays no request)
            or no request is waiting; once more at the end."""
            while state["consumers"]:
                await wake.wait()
                wake.clear()
                await _idle(loop)
                settle()
                if log is not None and log.flush_due(rows_ahead=2 * width):
                    llm.flush()
            settle()

        log = getattr(llm, "log", None)
        log = log if hasattr(log, "flush_due") else None
        tasks = [asyncio.create_task(produce()), asyncio.create_task(keep_house())]
        tasks += [asyncio.create_task(consume()) for _ in range(width)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            llm.flush()

    def read(
        self, row: dict[str, Any], steps: pl.DataFrame, result: ChatResult, started
    ) -> AnalysisResult:
        usage = usage_of(result)
        tid = row["trajectory_id"]
        if not result.ok or result.parsed is None:
            reason = result.error or "the model gave no answer"
            kind = f"[{result.error_kind}] " if result.error_kind else ""
            return AnalysisResult(
                tid, [], usage, f"model call failed: {kind}{reason}", started, now()
            )
        try:
            return self.finish(
                row, steps, case_of(row.get("outcome")), result.parsed, usage, started
            )
        except Exception as exc:
            return AnalysisResult(tid, [], usage, error_reason(exc), started, now())


def refitted(first: ChatResult, answer: ChatResult) -> ChatResult:
    """The answer to a request made again smaller, with the first attempt's tokens counted and
    both sizes named if it still does not fit."""
    if answer.error_kind == "context":
        n, m = answer.context or first.context or (None, None)
        answer.error = (
            f"the prompt does not fit the context window even rendered shorter: "
            f"{n or '?'} tokens asked, {m or '?'} available ({answer.error})"
        )
    answer.tokens_in += first.tokens_in
    return answer


class _Stop(Exception):
    """`done` asked the stream to stop."""


class _Pending:
    """A batch in the stream: its outcomes as they come, and how many runs are still out."""

    def __init__(self, key, batch: Batch, started):
        self.key, self.batch, self.started = key, batch, started
        self.outcomes: list[AnalysisResult | None] = [None] * batch.trajectories.height
        self.left = len(self.outcomes)

    def put(self, i: int, outcome: AnalysisResult) -> None:
        self.outcomes[i] = outcome
        self.left -= 1


async def _idle(loop: asyncio.AbstractEventLoop) -> None:
    """Return when no other callback is waiting to run: CPU work after this point delays no
    answer being read and no request being sent (as far as the loop can tell)."""
    await asyncio.sleep(0)
    ready = getattr(loop, "_ready", None)  # CPython's queue of callbacks due now
    for _ in range(IDLE_YIELDS):
        if not ready:
            return
        await asyncio.sleep(0)
