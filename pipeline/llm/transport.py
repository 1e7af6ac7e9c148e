"""One HTTP request to an OpenAI-compatible server, with our own retries.

The official ``AsyncOpenAI`` client does the HTTP and raises its typed errors; its own retries are
off (``max_retries=0``) so that every attempt is counted and every fault is classified here:

- retried, with exponential backoff and jitter: 429 (waiting what ``retry-after`` /
  ``retry-after-ms`` says, up to two minutes), 408, 409, 5xx, timeouts, connection errors, and
  200 answers whose body is malformed (truncated, not JSON, missing ``choices``);
- not retried: other 4xx (bad request, authentication, unknown model): the answer will not change.

A request never raises on a model fault: it ends as a `Sent` with data or with the last reason.
Clients belong to the event loop that created them; `bind()` makes new ones when the loop
changes (each ``LLM.map`` runs its own loop). Requests are spread over one client per
``PER_CLIENT`` concurrent requests: the HTTP connection pool scans all its connections for every
request, so several small pools cost less CPU per call than one large one.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai

from pipeline.llm.types import MalformedResponse
from pipeline.settings import ModelSettings, SettingsError

RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER_S = 120.0
PER_CLIENT = 8


@dataclass
class Sent:
    data: Any  # the parsed body, if the request succeeded
    text: str | None  # the body as received (also the last body of a failed request)
    attempts: int
    error: str | None


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

    def bind(self) -> openai.AsyncOpenAI:
        """A client of the running loop (the next one in turn)."""
        loop = asyncio.get_running_loop()
        if not self.clients or self._loop is not loop:
            n = -(-self.settings.concurrency // PER_CLIENT)
            base_url = self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or None
            self.clients = [
                openai.AsyncOpenAI(
                    api_key=self.key,
                    base_url=base_url,
                    max_retries=0,
                    timeout=self.settings.timeout_s,
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
        """POST one chat or embeddings body; `load` turns the text into data or raises."""
        client = self.bind()
        endpoint = client.chat.completions if kind == "chat" else client.embeddings

        async def once() -> tuple[Any, str]:
            raw = await endpoint.with_raw_response.create(**body)
            text = raw.http_response.text
            return load(text), text

        return await self.run(once)

    async def run(self, once: Callable[[], Awaitable[tuple[Any, str | None]]]) -> Sent:
        """Call `once()` until it returns (data, text), retrying what is worth retrying."""
        last, text, attempts = "no attempt made", None, 0
        for attempt in range(1, self.settings.max_retries + 2):
            attempts, asked = attempt, None
            try:
                data, text = await once()
                return Sent(data, text, attempt, None)
            except MalformedResponse as exc:
                last = str(exc)
            except openai.APITimeoutError:
                last = f"timeout after {self.settings.timeout_s:g}s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {exc.__cause__ or exc}"
            except openai.APIStatusError as exc:
                text = exc.response.text if exc.response is not None else None
                last = f"HTTP {exc.status_code}: {_message(exc)}"
                if exc.status_code < 500 and exc.status_code not in RETRY_STATUS:
                    return Sent(None, text, attempt, last)
                asked = retry_after(exc.response.headers if exc.response is not None else None)
            except openai.APIError as exc:  # e.g. a response the client could not read
                last = f"{exc.__class__.__name__}: {exc}"
            if attempt <= self.settings.max_retries:
                await asyncio.sleep(self.backoff(attempt, asked))
        return Sent(None, text, attempts, f"{last} (gave up after {attempts} attempts)")
