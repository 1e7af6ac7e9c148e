"""Requests and results of the model layer, the cache key, and reading a completion back.

A `ChatRequest` becomes a `Prepared` request: the exact chat-completions body sent (settings
filled in), its cache key and the JSON kept in `llm_calls`. The key is a digest of everything that
changes the answer (model, messages, temperature, seed, max_tokens, response format, tools,
tool_choice) and the prompt version, never the API key or the server address.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import pydantic

from pipeline.ids import canonical_json, digest
from pipeline.llm.endpoint import with_choices
from pipeline.llm.extract import read_structured, split_reasoning
from pipeline.settings import ModelSettings

KEY_VERSION = "llm-v1"
REPAIR = (
    "Your reply did not match the required JSON schema: {error}. "
    "Reply again with only the corrected JSON object."
)


@dataclass
class ChatRequest:
    messages: list[dict]
    response_model: type[pydantic.BaseModel] | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None  # the stage's size of its answer; the setting overrides it
    # values a field of the answer may take, held by servers that make a grammar of the schema
    # (`endpoint.with_choices`), e.g. the run's step numbers for the steps a lesson cites
    choices: dict[str, list] | None = None
    prompt_version: str | None = None
    stage: str = ""
    tag: str | None = None

    def reask(self, reply: str | None, text: str) -> ChatRequest:
        """The same request asked again: the model's `reply`, then `text` as the next user turn."""
        return dataclasses.replace(self, messages=reask_messages(self.messages, reply, text))


def reask_messages(messages: list[dict], reply: str | None, text: str) -> list[dict]:
    """`messages`, then the model's `reply` and `text` as the user's next message."""
    return [
        *messages,
        {"role": "assistant", "content": reply or ""},
        {"role": "user", "content": text},
    ]


@dataclass
class ChatResult:
    key: str
    ok: bool
    content: str | None = None
    tool_calls: list[dict] = field(default_factory=list)
    parsed: pydantic.BaseModel | None = None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    latency_ms: float = 0.0
    message: dict = field(default_factory=lambda: {"role": "assistant", "content": None})
    finish_reason: str | None = None
    attempts: int = 0
    error_kind: str | None = None  # see transport.KINDS, plus length, invalid_output, budget...
    reasoning: str | None = None  # the model's reasoning, kept apart from the answer
    mode: str | None = None  # how the request was shaped (endpoint.Endpoint.mode)
    context: tuple[int | None, int | None] | None = None  # (prompt, window) of a too-long prompt


@dataclass
class Usage:
    """Running totals of one LLM: server calls, cache hits, error results, tokens and cost."""

    n_calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass
class Prepared:
    req: ChatRequest
    body: dict  # the chat-completions body, as sent
    key: str
    params: str  # JSON of the generation parameters (llm_calls.params)
    request: str  # JSON of the messages (llm_calls.request)


@functools.cache
def response_format(model: type[pydantic.BaseModel]) -> dict:
    """A strict json_schema response_format for a pydantic model (the client's own converter).

    Cached per model class: building the strict schema costs milliseconds, and a map asks for
    it once per request. Callers must not mutate the returned dict."""
    try:
        from openai.lib._parsing._completions import type_to_response_format_param

        return dict(type_to_response_format_param(model))
    except Exception:  # helper moved, or a schema strict mode cannot express: send it plain
        return {
            "type": "json_schema",
            "json_schema": {"name": model.__name__, "schema": model.model_json_schema()},
        }


def prepare(req: ChatRequest, settings: ModelSettings) -> Prepared:
    """The logical body (before the endpoint shapes it) and its cache key; request values win
    over settings, except max_tokens, where the user's setting overrides the stage's size."""
    params: dict[str, Any] = {
        "temperature": req.temperature if req.temperature is not None else settings.temperature,
        "seed": req.seed if req.seed is not None else settings.seed,
        "max_tokens": settings.max_tokens if settings.max_tokens is not None else req.max_tokens,
    }
    if req.response_model is not None:
        params["response_format"] = response_format(req.response_model)
        if req.choices:
            params["response_format"] = with_choices(params["response_format"], req.choices)
    if req.tools:
        params["tools"] = req.tools
    if req.tool_choice is not None:
        params["tool_choice"] = req.tool_choice
    params = {k: v for k, v in params.items() if v is not None}
    body = {"model": settings.model, "messages": req.messages, **params}
    key = digest(KEY_VERSION, "chat", settings.model, req.messages, params, req.prompt_version)
    return Prepared(req, body, key, canonical_json(params), canonical_json(req.messages))


def embedding_key(model: str, text: str) -> str:
    return digest(KEY_VERSION, "embedding", model, text)


class MalformedResponse(ValueError):
    """A 200 answer that is not a chat completion (truncated, not JSON, no choices)."""


def load_completion(text: str) -> dict:
    try:
        data = json.loads(text)
        message = data["choices"][0]["message"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        snippet = text[:80].replace("\n", " ")
        raise MalformedResponse(
            f"malformed response body ({exc.__class__.__name__}): {snippet!r}"
        ) from None
    if not isinstance(message, dict):
        raise MalformedResponse("malformed response body: choices[0].message is not an object")
    return data


def read_completion(data: dict) -> dict[str, Any]:
    """content, tool_calls (arguments decoded where they are JSON), the message to append next,
    and the reasoning (``reasoning_content`` / ``reasoning`` fields, ``<think>`` blocks) apart."""
    choice = data["choices"][0]
    message = choice["message"]
    content, thought = split_reasoning(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    reasoning = "\n\n".join(t for t in (reasoning, thought) if isinstance(t, str) and t) or None
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        raw = fn.get("arguments") or ""
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = None
        calls.append({"id": call.get("id"), "name": fn.get("name"), "arguments": args, "raw": raw})
    next_message: dict[str, Any] = {"role": "assistant", "content": content}
    if message.get("tool_calls"):
        next_message["tool_calls"] = [
            {"id": c.get("id"), "type": "function", "function": c.get("function")}
            for c in message["tool_calls"]
        ]
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return {
        "content": content,
        "reasoning": reasoning,
        "reasoning_tokens": int(details.get("reasoning_tokens") or 0),
        "refusal": message.get("refusal"),
        "tool_calls": calls,
        "message": next_message,
        "finish_reason": choice.get("finish_reason"),
        "tokens_in": int(usage.get("prompt_tokens") or 0),
        "tokens_out": int(usage.get("completion_tokens") or 0),
    }


def validate_output(model: type[pydantic.BaseModel], content: str | None) -> pydantic.BaseModel:
    """The parsed instance, or a ValueError whose text the model can act on. The JSON is found
    in the text (a fence, prose around it) and near misses are read leniently (`extract`)."""
    if content is None:
        raise ValueError("the reply had no content; a JSON object was expected")
    try:
        return model.model_validate_json(content)
    except pydantic.ValidationError:
        return read_structured(model, content)


def repair_body(p: Prepared, content: str | None, problem: Exception) -> dict:
    """The request again, with the invalid reply and its validation error appended."""
    messages = reask_messages(p.body["messages"], content, REPAIR.format(error=problem))
    return {**p.body, "messages": messages}
