"""The model layer: `LLM.achat` / `amap` / `map` / `aembed` over any OpenAI-compatible server.

Reads and writes ``LAKE/llm_calls`` (through `CallLog`) and ``LAKE/model_endpoints`` (what the
server takes, see `endpoint` and `probe`): a request whose key has a servable answer is answered
from it and logged as a cache hit; anything else is shaped for the endpoint and goes to the server
under a concurrency limit (no more than the server's slots, where it says), with retries
(`Transport`), structured-output validation and one repair, token and cost budgets, and is logged
with its tokens, cost, latency, the mode that answered, its reasoning, and its error and the
error's kind. A request the server rejects for its shape is reshaped (the endpoint steps down a
level, and remembers it) and sent again, never as it was. An answer cut at ``max_tokens`` is an
error of its own kind (``length``), not repaired. Identical requests in flight at once share one
server call. Model faults never raise: they end as error results.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import time
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import numpy as np

from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm import probe
from pipeline.llm.cache import CallLog
from pipeline.llm.endpoint import Endpoint
from pipeline.llm.textual import read_action
from pipeline.llm.transport import Sent, Transport, context_sizes
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
# errors that answer every request the same way until someone changes the settings or the server
# (a server that keeps silent past `timeout_s`, retries included, is one too)
STEADY_KINDS = frozenset({"auth", "not_found", "bad_request", "rejected", "timeout"})
_VARYING = re.compile(r"\b[0-9a-f]{8,}\b|\b[\w-]*\d[\w-]*\b", re.IGNORECASE)  # ids, counts


class Breaker:
    """Opens when the same non-transient error answers `after` requests in a row: a wrong model
    name, key or URL would otherwise be sent once per run. Any other answer closes the streak."""

    def __init__(self, after: int):
        self.after = after
        self.streak: tuple[str, int] = ("", 0)
        self.reason: str | None = None

    def see(self, result: ChatResult) -> str | None:
        """The reason it opened, the first time it does; else None."""
        if self.reason is not None or not self.after:
            return None
        if result.ok or result.error_kind not in STEADY_KINDS:
            self.streak = ("", 0)
            return None
        error = result.error or ""
        same = f"{result.error_kind}:{_VARYING.sub('#', error)}"
        n = self.streak[1] + 1 if self.streak[0] == same else 1
        self.streak = (same, n)
        if n >= self.after:
            self.reason = (
                f"the server answered {n} requests in a row with the same error, so no more are "
                f"sent: [{result.error_kind}] {error}"
            )
            return self.reason
        return None


MAX_RESHAPES = 8  # more than the features an endpoint can step down


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
        self.breaker = Breaker(settings.breaker_after)
        self.transport = None if settings.offline else Transport(settings)
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[str, asyncio.Future] = {}
        self._warned: set[str] = set()
        self._endpoint: Endpoint | None = None
        self._endpoint_lock: asyncio.Lock | None = None
        self._started = time.monotonic()
        if self.transport is not None and hasattr(self.console, "add_status"):
            self.console.add_status(self.status_line)

    def status_line(self) -> str | None:
        """Calls, tokens per second and errors by kind so far, for the progress lines."""
        u = self.usage
        if not u.n_calls and not u.cache_hits:
            return None
        rate = u.tokens_out / max(time.monotonic() - self._started, 1e-9)
        text = f"{u.n_calls:,} calls, {u.cache_hits:,} cached, {rate:.1f} tokens/s out"
        if u.error_kinds:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(u.error_kinds.items()))
            text += f", errors: {kinds}"
        return text

    # -- bookkeeping -------------------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop, self._inflight = asyncio.Semaphore(self.width()), loop, {}
        return self._sem

    def width(self) -> int:
        """Requests in flight at once: `concurrency`, and no more than the server's slots, since
        requests past them wait in its queue in silence (they would time out)."""
        limit = self.settings.concurrency
        if self._endpoint is not None and self._endpoint.slots:
            limit = min(limit, self._endpoint.slots)
        return max(1, limit)

    # -- the endpoint --------------------------------------------------------------------------
    async def endpoint(self) -> Endpoint:
        """What the server takes: remembered in the lake, else found from its metadata once."""
        if self._endpoint is not None:
            return self._endpoint
        loop = asyncio.get_running_loop()
        if self._endpoint_lock is None or self._endpoint_lock._loop is not loop:  # noqa: SLF001
            self._endpoint_lock = asyncio.Lock()
        async with self._endpoint_lock:
            if self._endpoint is None:
                self._endpoint = await probe.resolve(self.settings, self.lake, self.console)
        return self._endpoint

    def endpoint_now(self) -> Endpoint:
        """`endpoint` from sync code (before a map: prompts are sized to its context window)."""
        if self._endpoint is None and self.transport is not None:
            self._endpoint = run_sync(probe.resolve(self.settings, self.lake, self.console))
        return self._endpoint

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

    def count(
        self, tokens_in: int, tokens_out: int, cost: float, *, ok: bool, kind: str | None = None
    ) -> None:
        u = self.usage
        u.n_calls += 1
        u.tokens_in += tokens_in
        u.tokens_out += tokens_out
        u.cost_usd += cost
        u.errors += 0 if ok else 1
        if not ok:
            u.error_kinds[kind or "other"] = u.error_kinds.get(kind or "other", 0) + 1

    def _row(self, p: Prepared, result: ChatResult, response: str | None, batch_id=None) -> None:
        self.log.add(
            error_kind=result.error_kind,
            mode=result.mode,
            reasoning=result.reasoning,
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

    def _fail(
        self, p: Prepared, reason: str, t0: float, *, log: bool = True, kind: str | None = None
    ) -> ChatResult:
        result = ChatResult(key=p.key, ok=False, error=reason, latency_ms=_ms(t0), error_kind=kind)
        if log:
            self.usage.errors += 1
            self._row(p, result, None)
        return result

    # -- answers -----------------------------------------------------------------------------
    def result_from(
        self, p: Prepared, text: str, mode: str | None = None, **extra: Any
    ) -> tuple[ChatResult, Exception | None]:
        """A result read from a completion body; the validation error, if the output is invalid.
        In the text tool protocol (`mode` says so), a reply that is a tool action becomes a call."""
        data = load_completion(text)
        if mode and "tools:text" in mode and p.req.tools and p.req.tool_choice != "none":
            _text_action(data, p, {t["function"]["name"] for t in p.req.tools})
        fields = read_completion(data)
        result = ChatResult(
            key=p.key,
            ok=True,
            content=fields["content"],
            tool_calls=fields["tool_calls"],
            message=fields["message"],
            finish_reason=fields["finish_reason"],
            tokens_in=fields["tokens_in"],
            tokens_out=fields["tokens_out"],
            reasoning=fields["reasoning"],
            mode=mode,
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
            mode = json.loads(answer[0]).get("x_mode") if '"x_mode"' in answer[0] else None
            result, invalid = self.result_from(p, answer[0], mode, cache_hit=True)
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
        await self.endpoint()
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

    async def send(self, body: dict, *, stream: bool | None = None) -> tuple[Sent, str]:
        """POST a logical chat body in the endpoint's shape: (what came back, the mode). A shape
        the server rejects steps the endpoint down (recorded in the lake) and is sent again in
        the new shape; the same rejected body is never sent twice."""
        ep = await self.endpoint()
        attempts = 0
        for _ in range(MAX_RESHAPES):
            version = ep.version
            wire, mode = ep.shape(body, stream=stream)
            sent = await self.transport.post("chat", wire, load_completion)
            attempts += sent.attempts
            sent.attempts = attempts
            if sent.error is None:
                if (
                    wire.get("stream")
                    and isinstance(sent.data, dict)
                    and not sent.data.get("usage")
                ):
                    self._switched(ep, ep.no_usage())
                if sent.text is not None:
                    sent.text = _with_mode(sent.text, mode)
                return sent, mode
            if sent.kind != "rejected":
                return sent, mode
            change = ep.switch(wire, sent.message or sent.error or "", version)
            if change is None:
                return sent, mode
            if not change.startswith("reshaped"):
                self._switched(ep, change)
        return sent, mode

    def _switched(self, ep: Endpoint, change: str | None) -> None:
        """Record a change of the endpoint's shape in the lake and say it once."""
        if change is not None:
            probe.save(self.lake, ep, "switch")
            self.console.warn(f"{self.settings.model} at {ep.base_url}: {change}")

    async def _call(self, p: Prepared, t0: float) -> ChatResult:
        if self.over_budget():
            return self._fail(p, BUDGET, t0, kind="budget")
        if self.breaker.reason is not None:  # not sent: nothing to log, a rerun sends it
            return self._fail(p, self.breaker.reason, t0, log=False, kind="breaker")
        sent, mode = await self.send(p.body)
        attempts, text = sent.attempts, sent.text
        if sent.error is not None:
            result = _failed(p, sent, mode)
            self._learn_window(result)
        else:
            result, invalid = self.result_from(p, sent.text, mode)
            self._learn(p, result)
            if invalid is not None and result.finish_reason == "length":
                result.ok, result.error_kind = False, "length"
                result.error = (
                    f"the answer was cut at the completion limit ({p.body.get('max_tokens')} "
                    f"tokens) before it was complete: {invalid}"
                )
            elif invalid is not None:
                result, text = await self._repair(p, result, invalid)
                attempts += result.attempts
            result.attempts = attempts
        return self.finish(p, result, text, t0)

    def _learn_window(self, result: ChatResult) -> None:
        """A server that did not say its context window says it in an over-long prompt's error."""
        ep, window = self._endpoint, (result.context or (None, None))[1]
        if ep is not None and window and ep.context_tokens is None:
            ep.context_tokens = window
            ep.notes.append(f"context window {window} tokens, from an over-long prompt's error")
            probe.save(self.lake, ep, "learned")

    def _learn(self, p: Prepared, result: ChatResult) -> None:
        if self._endpoint is not None and result.tokens_in:
            chars = sum(len(str(m.get("content") or "")) for m in p.body["messages"])
            self._endpoint.learn_ratio(chars, result.tokens_in)

    async def _repair(
        self, p: Prepared, bad: ChatResult, problem: Exception
    ) -> tuple[ChatResult, str | None]:
        """One more call showing the model its validation error; then an error result."""
        body = repair_body(p, bad.content, problem)
        sent, mode = await self.send(body)
        spent_in, spent_out = bad.tokens_in, bad.tokens_out
        if sent.error is not None:
            reason = f"invalid output ({problem}); the repair call failed: {sent.error}"
            out = ChatResult(
                key=p.key,
                ok=False,
                error=reason,
                content=bad.content,
                mode=mode,
                error_kind=sent.kind,
            )
            out.tokens_in, out.tokens_out, out.attempts = spent_in, spent_out, sent.attempts
            return out, sent.text
        result, invalid = self.result_from(p, sent.text, mode)
        result.tokens_in += spent_in
        result.tokens_out += spent_out
        result.attempts = sent.attempts
        if invalid is not None:
            kind = "length" if result.finish_reason == "length" else "invalid_output"
            result.ok, result.error_kind = False, kind
            result.error = f"invalid output after one repair: {invalid}"
        return result, sent.text

    def finish(
        self, p: Prepared, result: ChatResult, text: str | None, t0: float, batch_id=None
    ) -> ChatResult:
        """Price, count and log a result that came from the server."""
        result.cost_usd = self.cost(self.settings.model, result.tokens_in, result.tokens_out)
        result.latency_ms = _ms(t0)
        self.count(
            result.tokens_in,
            result.tokens_out,
            result.cost_usd,
            ok=result.ok,
            kind=result.error_kind,
        )
        self._row(p, result, text, batch_id)
        self.over_budget()
        if (opened := self.breaker.see(result)) is not None:
            self.console.warn(opened)
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
        if self.transport is not None and any(p.key not in cached for p in prepared):
            await self.endpoint()  # once, before the workers: they start in order
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


def _failed(p: Prepared, sent: Sent, mode: str) -> ChatResult:
    result = ChatResult(
        key=p.key,
        ok=False,
        error=sent.error,
        attempts=sent.attempts,
        mode=mode,
        error_kind=sent.kind,
    )
    if sent.kind == "context":
        result.context = context_sizes(sent.message or sent.error or "")
    return result


def _with_mode(text: str, mode: str) -> str:
    """The body as logged, with the mode that answered it (a cache hit reads the answer the way
    it was asked: a text-protocol reply is read for its tool action)."""
    if "tools:text" not in mode:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    data["x_mode"] = mode
    return json.dumps(data, ensure_ascii=False)


def _text_action(data: dict, p: Prepared, names: set[str]) -> None:
    """Turn a text-protocol reply into the native tool call it stands for (in place)."""
    message = data["choices"][0]["message"]
    if message.get("tool_calls"):
        return
    call = read_action(message.get("content"), names, p.key[:12])
    if call is not None:
        message["tool_calls"] = [call]
        message["content"] = None
        data["choices"][0]["finish_reason"] = "tool_calls"
