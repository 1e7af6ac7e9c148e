"""The model layer: `LLM.achat` / `amap` / `map` / `aembed` over any OpenAI-compatible server.

Reads and writes ``LAKE/llm_calls`` (through `CallLog`): a request whose key has a servable answer
is answered from it and logged as a cache hit; anything else goes to the server under a
concurrency limit, with retries (`Transport`), structured-output validation and one repair, token
and cost budgets, and is logged with its tokens, cost, latency and error. Identical requests in
flight at once share one server call. Model faults never raise: they end as error results.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import numpy as np

from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm.cache import CallLog
from pipeline.llm.transport import Transport
from pipeline.llm.types import (
    ChatRequest,
    ChatResult,
    Prepared,
    Usage,
    load_completion,
    prepare,
    read_completion,
    repair_body,
    validate_output,
)
from pipeline.settings import ModelSettings

T = TypeVar("T")
BUDGET = "budget exhausted"


def run_sync(coro: Coroutine[Any, Any, T], *, release: Iterable[LLM] = ()) -> T:
    """Run a coroutine to completion from sync code, even when an event loop is running.

    The `release` LLMs close the HTTP clients they opened on that loop before it ends: a client
    left open is closed later by the garbage collector on another loop, which fails noisily.
    """

    async def guarded() -> T:
        try:
            return await coro
        finally:
            for llm in release:
                await llm.release()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(guarded())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, guarded()).result()


class LLM:
    def __init__(
        self, settings: ModelSettings, lake: Lake | None = None, console: Console | None = None
    ):
        self.settings = settings
        self.lake = lake
        self.console = console or Console()
        self.log = CallLog(lake, flush_rows=settings.log_flush_rows, flush_s=settings.log_flush_s)
        self.usage = Usage()
        self.budget_exhausted = False
        self.transport = None if settings.offline else Transport(settings)
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._warned: set[str] = set()

    # -- bookkeeping -------------------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop, self._inflight = (
                asyncio.Semaphore(self.settings.concurrency),
                loop,
                {},
            )
        return self._sem

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        price = self.settings.prices.get(model)
        if price is None:
            if model not in self._warned:
                self._warned.add(model)
                self.console.warn(f"no price for model {model!r}: its cost is counted as 0")
            return 0.0
        return (tokens_in * price[0] + tokens_out * price[1]) / 1e6

    def over_budget(self) -> bool:
        s, u = self.settings, self.usage
        if not self.budget_exhausted and (
            (s.token_budget is not None and u.tokens >= s.token_budget)
            or (s.cost_budget_usd is not None and u.cost_usd >= s.cost_budget_usd)
        ):
            self.budget_exhausted = True
            self.console.warn(
                f"budget reached ({u.tokens:,} tokens, ${u.cost_usd:.4f}): "
                "the remaining requests end as 'budget exhausted'; a rerun resumes from the cache"
            )
        return self.budget_exhausted

    def count(self, tokens_in: int, tokens_out: int, cost: float, *, ok: bool) -> None:
        u = self.usage
        u.n_calls += 1
        u.tokens_in += tokens_in
        u.tokens_out += tokens_out
        u.cost_usd += cost
        u.errors += 0 if ok else 1

    def _row(self, p: Prepared, result: ChatResult, response: str | None, batch_id=None) -> None:
        self.log.add(
            key=p.key,
            stage=p.req.stage,
            kind="chat",
            model=self.settings.model,
            params=p.params,
            prompt_version=p.req.prompt_version,
            request=p.request,
            response=response,
            finish_reason=result.finish_reason,
            tag=p.req.tag,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            latency_ms=result.latency_ms,
            cost_usd=result.cost_usd,
            attempts=result.attempts,
            error=result.error,
            cache_hit=result.cache_hit,
            batch_id=batch_id,
        )

    def _fail(self, p: Prepared, reason: str, t0: float, *, log: bool = True) -> ChatResult:
        result = ChatResult(key=p.key, ok=False, error=reason, latency_ms=_ms(t0))
        if log:
            self.usage.errors += 1
            self._row(p, result, None)
        return result

    # -- answers -----------------------------------------------------------------------------
    def result_from(
        self, p: Prepared, text: str, **extra: Any
    ) -> tuple[ChatResult, Exception | None]:
        """A result read from a completion body; the validation error, if the output is invalid."""
        fields = read_completion(load_completion(text))
        result = ChatResult(
            key=p.key,
            ok=True,
            content=fields["content"],
            tool_calls=fields["tool_calls"],
            message=fields["message"],
            finish_reason=fields["finish_reason"],
            tokens_in=fields["tokens_in"],
            tokens_out=fields["tokens_out"],
            **extra,
        )
        model = p.req.response_model
        if model is None or result.tool_calls:
            return result, None
        if fields["refusal"]:
            return result, ValueError(f"the model refused: {fields['refusal']}")
        try:
            result.parsed = validate_output(model, result.content)
        except ValueError as exc:
            return result, exc
        return result, None

    def _from_cache(self, p: Prepared, answer, t0: float) -> ChatResult | None:
        if answer is None or answer[0] is None:
            return None
        try:
            result, invalid = self.result_from(p, answer[0], cache_hit=True)
        except ValueError:
            return None
        if invalid is not None:
            return None  # e.g. a stricter response model now: ask again
        result.tokens_in = result.tokens_out = 0
        result.latency_ms = _ms(t0)
        self.usage.cache_hits += 1
        self._row(p, result, None)
        return result

    async def achat(self, req: ChatRequest) -> ChatResult:
        """One chat completion: from the cache, or from the server. Never raises on model faults."""
        p = prepare(req, self.settings)
        cached = self._lookup([p.key]).get(p.key) if self.transport is not None else None
        return await self._achat(p, cached)

    async def _achat(self, p: Prepared, cached) -> ChatResult:
        t0 = time.perf_counter()
        if self.transport is None:
            return self._fail(p, "no model configured (model is 'offline')", t0, log=False)
        hit = self._from_cache(p, cached, t0)
        if hit is not None:
            return hit
        sem = self._semaphore()
        first = self._inflight.get(p.key)
        if first is not None:
            return self._shared(p, await asyncio.shield(first), t0)
        future = asyncio.get_running_loop().create_future()
        self._inflight[p.key] = future
        try:
            async with sem:
                result = await self._call(p, t0)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # a bug here must not hang the requests sharing this call
            result = self._fail(p, f"internal error: {exc.__class__.__name__}: {exc}", t0)
        finally:
            self._inflight.pop(p.key, None)
        if not future.done():
            future.set_result(result)
        return result

    def _shared(self, p: Prepared, first: ChatResult, t0: float) -> ChatResult:
        if not first.ok:
            return self._fail(p, first.error or "failed", t0)
        result = ChatResult(
            **{**first.__dict__, "cache_hit": True, "tokens_in": 0, "tokens_out": 0}
        )
        result.cost_usd, result.attempts, result.latency_ms = 0.0, 0, _ms(t0)
        self.usage.cache_hits += 1
        self._row(p, result, None)
        return result

    async def _call(self, p: Prepared, t0: float) -> ChatResult:
        if self.over_budget():
            return self._fail(p, BUDGET, t0)
        sent = await self.transport.post("chat", p.body, load_completion)
        attempts, text = sent.attempts, sent.text
        if sent.error is not None:
            result = ChatResult(key=p.key, ok=False, error=sent.error, attempts=attempts)
        else:
            result, invalid = self.result_from(p, sent.text)
            if invalid is not None:
                result, text = await self._repair(p, result, invalid)
                attempts += result.attempts
            result.attempts = attempts
        return self.finish(p, result, text, t0)

    async def _repair(
        self, p: Prepared, bad: ChatResult, problem: Exception
    ) -> tuple[ChatResult, str | None]:
        """One more call showing the model its validation error; then an error result."""
        body = repair_body(p, bad.content, problem)
        sent = await self.transport.post("chat", body, load_completion)
        spent_in, spent_out = bad.tokens_in, bad.tokens_out
        if sent.error is not None:
            reason = f"invalid output ({problem}); the repair call failed: {sent.error}"
            out = ChatResult(key=p.key, ok=False, error=reason, content=bad.content)
            out.tokens_in, out.tokens_out, out.attempts = spent_in, spent_out, sent.attempts
            return out, sent.text
        result, invalid = self.result_from(p, sent.text)
        result.tokens_in += spent_in
        result.tokens_out += spent_out
        result.attempts = sent.attempts
        if invalid is not None:
            result.ok, result.error = False, f"invalid output after one repair: {invalid}"
        return result, sent.text

    def finish(
        self, p: Prepared, result: ChatResult, text: str | None, t0: float, batch_id=None
    ) -> ChatResult:
        """Price, count and log a result that came from the server."""
        result.cost_usd = self.cost(self.settings.model, result.tokens_in, result.tokens_out)
        result.latency_ms = _ms(t0)
        self.count(result.tokens_in, result.tokens_out, result.cost_usd, ok=result.ok)
        self._row(p, result, text, batch_id)
        self.over_budget()
        return result

    # -- many at once ------------------------------------------------------------------------
    def _lookup(self, keys: list[str]) -> dict:
        found = self.log.get_many(keys)
        while self.log.unreadable:
            self.console.warn(
                f"llm_calls part skipped, its answers will be asked again: {self.log.unreadable.pop()}"
            )
        return found

    async def amap(self, reqs: list[ChatRequest]) -> list[ChatResult]:
        """Every request answered, in the same order; the log is flushed at the end."""
        prepared = [prepare(r, self.settings) for r in reqs]
        cached = {} if self.transport is None else self._lookup([p.key for p in prepared])
        if self.settings.batch and self.transport is not None:
            from pipeline.llm.batch import amap_batch

            try:
                return await amap_batch(self, prepared, cached)
            finally:
                self.log.flush()
        results: list[ChatResult | None] = [None] * len(prepared)
        todo = iter(range(len(prepared)))
        with self.console.progress("model calls", len(prepared)) as advance:

            async def worker() -> None:
                for i in todo:
                    results[i] = await self._achat(prepared[i], cached.get(prepared[i].key))
                    advance()

            flusher = asyncio.create_task(self._flush_every())
            try:
                n = min(len(prepared), self.settings.concurrency * 2) or 1
                await asyncio.gather(*(worker() for _ in range(n)))
            finally:
                flusher.cancel()
                self.log.flush()
        return results  # type: ignore[return-value]

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.settings.log_flush_s)
            self.log.maybe_flush()

    def map(self, reqs: list[ChatRequest]) -> list[ChatResult]:
        """`amap` from sync code."""
        return run_sync(self.amap(reqs), release=[self])

    async def release(self) -> None:
        """Close the HTTP clients opened on the running loop; later calls open new ones."""
        if self.transport is not None:
            await self.transport.aclose()

    async def aembed(self, texts: list[str], *, stage: str = "embed") -> np.ndarray:
        """Embeddings of `texts` with the configured embedder, (n, d) float32, L2-normalised."""
        from pipeline.llm.embed import aembed

        return await aembed(self, texts, stage=stage)

    def embed(self, texts: list[str], *, stage: str = "embed") -> np.ndarray:
        return run_sync(self.aembed(texts, stage=stage), release=[self])

    # -- lifecycle ---------------------------------------------------------------------------
    def flush(self) -> None:
        self.log.flush()

    async def aclose(self) -> None:
        self.log.close()
        await self.release()

    def close(self) -> None:
        self.log.close()
        if self.transport is not None:
            self.transport.forget()  # their loop, if any, is gone with their connections

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
