"""One HTTP request to an OpenAI-compatible server, with our own retries.

The official ``AsyncOpenAI`` client does the HTTP and raises its typed errors; its own retries are
off (``max_retries=0``) so that every attempt is counted and every fault is classified here, by
`kind` (the kinds are `KINDS`):

- retried, with exponential backoff and jitter: 429 (waiting what ``retry-after`` /
  ``retry-after-ms`` says, up to two minutes), 408, 409, 5xx, connection errors, and 200 answers
  whose body is malformed (truncated, not JSON, missing ``choices``, a stream that stops short);
  a time-out (silence: no byte for ``timeout_s``) is retried at most ``timeout_retries`` times;
- not retried: other 4xx, and a 5xx whose message is a validation error (a server that answers
  a request shape it does not take with 500, as llama-cpp-python's does): the answer will not
  change. The caller reshapes a ``rejected`` request (see `endpoint`) and fits a ``context`` one.

A chat body with ``stream`` is read as server-sent events and put back together as one
completion, so a slow server that keeps sending tokens is never cut off and resent: the time-out
counts silence, not the length of the answer.

A request never raises on a model fault: it ends as a `Sent` with data or with the last reason.
Clients belong to the event loop that created them; `bind()` makes new ones when the loop
changes (each ``LLM.map`` runs its own loop). Requests are spread over one client per
``PER_CLIENT`` concurrent requests: the HTTP connection pool scans all its connections for every
request, so several small pools cost less CPU per call than one large one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import openai

from pipeline.analyse.redact import scrub
from pipeline.llm.types import MalformedResponse
from pipeline.settings import ModelSettings, SettingsError

RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER_S = 120.0
PER_CLIENT = 8
KINDS = (
    "rate_limit",  # 429 after every retry
    "server",  # 5xx after every retry
    "timeout",  # silence past timeout_s
    "connection",
    "malformed",  # a 200 that is not a completion
    "rejected",  # the request's shape: a parameter, format or tool use the server refuses
    "context",  # the prompt does not fit the context window
    "auth",  # 401, 403
    "not_found",  # 404: no such model or route
    "bad_request",  # another 4xx
)
# A 5xx that says the request was invalid will say so again: it is a rejection, not a fault.
_INVALID = re.compile(
    r"input should be|validation error|not supported|unsupported|extra (inputs|fields)|"
    r"unrecognized|unknown (field|parameter|argument)|not permitted|is not allowed|field required",
    re.I,
)
_CONTEXT = re.compile(
    r"context (size|length|window)|maximum context|context_length|too many tokens|"
    r"exceeds the (available|maximum)|prompt is too long|input is too long",
    re.I,
)


@dataclass
class Sent:
    data: Any  # the parsed body, if the request succeeded
    text: str | None  # the body as received (also the last body of a failed request)
    attempts: int
    error: str | None
    kind: str | None = None  # one of KINDS when the request failed
    message: str | None = None  # the server's own words, for a rejection


class EmptyStream(MalformedResponse):
    """A stream that ended before its first chunk: a server that cannot stream this request
    (llama-cpp-python's, for a prompt over its window). Not retried: the caller reads it whole."""


def classify(status: int, message: str) -> str:
    """The kind of an HTTP error answer (see `KINDS`)."""
    if _CONTEXT.search(message):
        return "context"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "rejected" if _INVALID.search(message) else "server"
    if status in RETRY_STATUS:
        return "server"
    return "rejected" if status in (400, 415, 422) else "bad_request"


def context_sizes(message: str) -> tuple[int | None, int | None]:
    """(prompt tokens, context tokens) from an over-long prompt's error, where it says them."""
    numbers = [int(n) for n in re.findall(r"(\d+)\s*tokens", message)]
    m = re.search(r"request \((\d+) tokens\) exceeds the available context size \((\d+)", message)
    if m:  # llama.cpp
        return int(m[1]), int(m[2])
    m = re.search(r"maximum context length is (\d+) tokens.*?(\d+) tokens", message, re.S)
    if m:  # OpenAI, vLLM, llama-cpp-python: the prompt alone, where it is said apart
        prompt = re.search(r"\((\d+) in the messages", message)
        return int(prompt[1] if prompt else m[2]), int(m[1])
    if len(numbers) >= 2:
        return max(numbers), min(numbers)
    return None, None


class StreamAnswer:
    """Chunks of a streamed chat completion, put back together as one completion body."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict] = {}
        self.finish: str | None = None
        self.usage: dict | None = None
        self.head: dict = {}
        self.n = 0

    def add(self, chunk: dict) -> None:
        if "error" in chunk:
            error = chunk["error"]
            text = error.get("message") if isinstance(error, dict) else str(error)
            raise MalformedResponse(f"the server reported an error mid-stream: {text}")
        self.n += 1
        self.head = self.head or {k: chunk.get(k) for k in ("id", "model", "created")}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                self.reasoning.append(thought)
            for call in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(
                    call.get("index", len(self.calls)),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def completion(self) -> dict:
        if self.n == 0:
            raise EmptyStream("the stream ended empty, before its first chunk")
        if self.finish is None:
            raise MalformedResponse("the stream ended before the answer was complete")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        body = {**self.head, "object": "chat.completion"}
        body["choices"] = [{"index": 0, "message": message, "finish_reason": self.finish}]
        if self.usage is not None:
            body["usage"] = self.usage
        return body


def api_key(settings: ModelSettings) -> str:
    key = settings.api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if settings.base_url or os.environ.get("OPENAI_BASE_URL"):
        return "unused"  # local servers (vLLM, Ollama, llama.cpp) accept any key
    raise SettingsError(
        f"model {settings.model!r} needs an API key: set OPENAI_API_KEY or pass --api-key, "
        "or point --base-url at a server that needs none"
    )


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait, if it said."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return min(max(float(value) / scale, 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            continue
    return None


def _body_text(exc: openai.APIStatusError) -> str | None:
    if exc.response is None:
        return None
    try:
        return exc.response.text
    except httpx.ResponseNotRead:  # a streamed request's error body
        return json.dumps(exc.body) if exc.body is not None else None


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return exc.message


class Transport:
    def __init__(self, settings: ModelSettings, rng: random.Random | None = None):
        self.settings = settings
        self.key = api_key(settings)
        self.rng = rng or random.Random()
        self.clients: list[openai.AsyncOpenAI] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn = 0
        self._tls: ssl.SSLContext | None = None

    def bind(self) -> openai.AsyncOpenAI:
        """A client of the running loop (the next one in turn)."""
        loop = asyncio.get_running_loop()
        if not self.clients or self._loop is not loop:
            n = -(-self.settings.concurrency // PER_CLIENT)
            base_url = self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or None
            # the read time-out bounds the silence between two bytes, not the answer
            timeout = httpx.Timeout(
                self.settings.timeout_s, connect=min(self.settings.timeout_s, 30.0)
            )
            if self._tls is None:  # one TLS context for every client: each costs ~20 ms to make
                self._tls = ssl.create_default_context()
            self.clients = [
                openai.AsyncOpenAI(
                    api_key=self.key,
                    base_url=base_url,
                    max_retries=0,
                    timeout=timeout,
                    http_client=openai.DefaultAsyncHttpxClient(verify=self._tls, timeout=timeout),
                )
                for _ in range(n)
            ]
            self._loop = loop
        self._turn = (self._turn + 1) % len(self.clients)
        return self.clients[self._turn]

    def forget(self) -> None:
        """Drop the clients without closing them (their loop is gone)."""
        self.clients, self._loop = [], None

    async def aclose(self) -> None:
        if self.clients and self._loop is asyncio.get_running_loop():
            for client in self.clients:
                await client.close()
        self.forget()

    def backoff(self, attempt: int, asked: float | None) -> float:
        if asked is not None:
            return asked
        s = self.settings
        return min(s.retry_base_s * 2 ** (attempt - 1), s.retry_max_s) * self.rng.uniform(0.5, 1)

    async def post(self, kind: str, body: dict, load: Callable[[str], dict]) -> Sent:
        """POST one chat or embeddings body; `load` turns the text into data or raises. The body
        is sent as it is: it was shaped for the endpoint already, and the typed `create` would
        walk every message again (an eighth of the loop's time at high concurrency)."""
        client = self.bind()
        path = "/chat/completions" if kind == "chat" else "/embeddings"

        async def once() -> tuple[Any, str]:
            if body.get("stream"):
                return await self._streamed(client, path, body, load)
            response = await client.post(path, body=body, cast_to=httpx.Response)
            text = response.text
            return load(text), text

        return await self.run(once)

    @staticmethod
    async def _streamed(
        client: openai.AsyncOpenAI, path: str, body: dict, load: Callable[[str], dict]
    ) -> tuple[Any, str]:
        answer = StreamAnswer()
        response = await client.post(path, body=body, cast_to=httpx.Response, stream=True)
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise MalformedResponse(f"malformed stream chunk: {payload[:80]!r}") from None
                answer.add(chunk)
        except httpx.TimeoutException as exc:  # silence mid-stream: the client's own kind
            raise openai.APITimeoutError(request=response.request) from exc
        except httpx.TransportError as exc:
            raise openai.APIConnectionError(request=response.request) from exc
        finally:
            await response.aclose()
        text = json.dumps(answer.completion(), ensure_ascii=False)
        return load(text), text

    async def run(self, once: Callable[[], Awaitable[tuple[Any, str | None]]]) -> Sent:
        """Call `once()` until it returns (data, text), retrying what is worth retrying; the
        key is scrubbed from what comes back (servers echo it in error messages)."""
        sent = await self._run(once)
        secret = self.key if len(self.key) >= 8 else None  # not a placeholder such as "unused"
        echoed = secret is not None and sent.text is not None and secret in sent.text
        if sent.error is None and not echoed:
            return sent
        sent.text, sent.error, sent.message = (
            scrub(v, known=[secret]) for v in (sent.text, sent.error, sent.message)
        )
        return sent

    async def _run(self, once: Callable[[], Awaitable[tuple[Any, str | None]]]) -> Sent:
        last, text, attempts, kind, timeouts = "no attempt made", None, 0, None, 0
        for attempt in range(1, self.settings.max_retries + 2):
            attempts, asked = attempt, None
            try:
                data, text = await once()
                return Sent(data, text, attempt, None)
            except EmptyStream as exc:
                return Sent(None, text, attempt, str(exc), "rejected", str(exc))
            except MalformedResponse as exc:
                last, kind = str(exc), "malformed"
            except openai.APITimeoutError:
                last, kind = f"no answer for {self.settings.timeout_s:g}s (silence)", "timeout"
                timeouts += 1
                if timeouts > self.settings.timeout_retries:
                    break
            except openai.APIConnectionError as exc:
                last, kind = f"connection error: {exc.__cause__ or exc}", "connection"
            except openai.APIStatusError as exc:
                text = _body_text(exc)
                message = _message(exc)
                last, kind = (
                    f"HTTP {exc.status_code}: {message}",
                    classify(exc.status_code, message),
                )
                if kind not in ("server", "rate_limit"):
                    return Sent(None, text, attempt, last, kind, message)
                asked = retry_after(exc.response.headers if exc.response is not None else None)
            except openai.APIError as exc:  # e.g. a response the client could not read
                last, kind = f"{exc.__class__.__name__}: {exc}", "malformed"
            if attempt <= self.settings.max_retries:
                await asyncio.sleep(self.backoff(attempt, asked))
        return Sent(None, text, attempts, f"{last} (gave up after {attempts} attempts)", kind)
