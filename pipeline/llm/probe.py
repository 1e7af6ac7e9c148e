"""Finding out what a (server, model) takes: read once, remembered in ``LAKE/model_endpoints``.

`resolve` gives the model layer its `Endpoint`: the latest row of the lake for this server and
model, or, the first time, what the server's metadata says (no chat request is spent on it):

- llama.cpp ``GET /props``: the context per slot (``default_generation_settings.n_ctx``) and the
  slots (``total_slots``);
- vLLM ``GET /v1/models``: ``max_model_len``; Ollama ``POST /api/show``: ``num_ctx`` or the
  model's context length; otherwise the ``context_tokens`` setting, or nothing known.

From there the layer learns by rejection (`Endpoint.switch`). `probe` (``trace2skill models
check``) asks on purpose, with a few small requests: each structured-output mode from the best
down, native tool calls, streaming with usage, usage in whole answers, reasoning output, and the
characters per token of a sample prompt. Both write a row; a switch writes one too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx
import polars as pl

from pipeline import schemas
from pipeline.ids import digest
from pipeline.lake import Lake
from pipeline.llm.endpoint import STRUCTURED, Endpoint
from pipeline.settings import ModelSettings

TABLE = "model_endpoints"
OPENAI_URL = "https://api.openai.com/v1"
META_TIMEOUT_S = 10.0


def base_url_of(settings: ModelSettings) -> str:
    """The server address without credentials, query or trailing slash."""
    url = settings.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def endpoint_id(base_url: str, model: str) -> str:
    return digest("endpoint", base_url, model)


# -- the lake ------------------------------------------------------------------------------------
def load(lake: Lake | None, base_url: str, model: str) -> Endpoint | None:
    if lake is None or not lake.exists(TABLE):
        return None
    eid = endpoint_id(base_url, model)
    try:
        rows = (
            lake.scan(TABLE)
            .filter(pl.col("endpoint_id") == eid)
            .sort("recorded_at")
            .tail(1)
            .collect()
        )
    except Exception:  # an unreadable table: find out again rather than fail the run
        return None
    if rows.is_empty():
        return None
    row = rows.row(0, named=True)
    return Endpoint(
        base_url=base_url,
        model=model,
        server=row["server"],
        structured=row["structured"],
        tools=row["tools"],
        stream=row["stream"],
        stream_usage=row["stream_usage"],
        token_param=row["token_param"],
        dropped=json.loads(row["dropped"]),
        context_tokens=row["context_tokens"],
        slots=row["slots"],
        chars_per_token=row["chars_per_token"],
        notes=json.loads(row["notes"]),
    )


def save(lake: Lake | None, ep: Endpoint, source: str) -> None:
    if lake is None:
        return
    row = {
        "endpoint_id": endpoint_id(ep.base_url, ep.model),
        "base_url": ep.base_url,
        "model": ep.model,
        "source": source,
        "server": ep.server,
        "structured": ep.structured,
        "tools": ep.tools,
        "stream": ep.stream,
        "stream_usage": ep.stream_usage,
        "token_param": ep.token_param,
        "dropped": json.dumps(ep.dropped),
        "context_tokens": ep.context_tokens,
        "slots": ep.slots,
        "chars_per_token": ep.chars_per_token,
        "notes": json.dumps(ep.notes, ensure_ascii=False),
        "recorded_at": dt.datetime.now(dt.UTC),
    }
    frame = pl.DataFrame([row], schema=schemas.table(TABLE).columns)
    stamp = row["recorded_at"].strftime("%Y%m%dT%H%M%S%f")
    lake.write_part(TABLE, frame, part=f"{stamp}-{row['endpoint_id'][:12]}-{source}")


async def resolve(settings: ModelSettings, lake: Lake | None, console=None) -> Endpoint:
    """The endpoint the model layer uses (see the module docstring)."""
    base_url = base_url_of(settings)
    ep = load(lake, base_url, settings.model)
    if ep is None:
        ep = Endpoint.fresh(
            base_url,
            settings.model,
            structured=settings.structured_output,
            tools=settings.tool_protocol,
        )
        await discover(ep, settings)
        save(lake, ep, "first_use")
    else:  # settings the user forced win over what was remembered
        if settings.structured_output != "auto":
            ep.structured = settings.structured_output
        if settings.tool_protocol != "auto":
            ep.tools = settings.tool_protocol
    if not settings.stream:
        ep.stream = False
    if settings.context_tokens is not None:
        ep.context_tokens = settings.context_tokens
    if console is not None and hasattr(console, "detail"):
        console.detail(
            f"endpoint {base_url} {settings.model}: {ep.mode}, context {ep.context_tokens}"
        )
    return ep


# -- metadata ------------------------------------------------------------------------------------
def _root(base_url: str) -> str:
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def _headers(settings: ModelSettings) -> dict[str, str]:
    key = settings.api_key or os.environ.get("OPENAI_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


async def _get_json(client: httpx.AsyncClient, method: str, url: str, **kw) -> Any:
    try:
        response = await client.request(method, url, **kw)
        if response.status_code != 200:
            return None
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


async def discover(ep: Endpoint, settings: ModelSettings) -> None:
    """Fill the context window, the slots and the server's kind from its metadata, in place.
    The three places servers keep it are asked at once (one round trip to a distant server)."""
    if ep.base_url == OPENAI_URL:
        ep.server = "openai"
        return
    root = _root(ep.base_url)
    async with httpx.AsyncClient(timeout=META_TIMEOUT_S, headers=_headers(settings)) as client:
        props, models, show = await asyncio.gather(
            _get_json(client, "GET", f"{root}/props"),
            _get_json(client, "GET", f"{ep.base_url}/models"),
            _get_json(client, "POST", f"{root}/api/show", json={"model": ep.model}),
        )
        if isinstance(props, dict) and (
            "total_slots" in props or "default_generation_settings" in props
        ):
            ep.server = "llama.cpp"
            gen = props.get("default_generation_settings") or {}
            n_ctx = gen.get("n_ctx") or props.get("n_ctx")
            if isinstance(n_ctx, int) and n_ctx > 0:
                ep.context_tokens = n_ctx
            if isinstance(props.get("total_slots"), int):
                ep.slots = props["total_slots"]
            ep.notes.append(
                f"llama.cpp /props: n_ctx {ep.context_tokens} per slot, {ep.slots} slots"
            )
            caps = props.get("chat_template_caps") or {}
            if caps.get("supports_tool_calls") is False and ep.tools == "native":
                # its template drops the tools and the model answers in prose: text protocol
                ep.tools = "text"
                ep.notes.append("the chat template has no tool calls: tools go as text")
            return
        entries = (models or {}).get("data") if isinstance(models, dict) else None
        for entry in entries or []:
            if (
                isinstance(entry, dict)
                and entry.get("id") == ep.model
                and entry.get("max_model_len")
            ):
                ep.server = "vllm"
                ep.context_tokens = int(entry["max_model_len"])
                ep.notes.append(f"vLLM /v1/models: max_model_len {ep.context_tokens}")
                return
        if isinstance(show, dict) and ("model_info" in show or "modelfile" in show):
            ep.server = "ollama"
            ctx = _ollama_context(show)
            if ctx:
                ep.context_tokens = ctx
            ep.notes.append(f"Ollama /api/show: context {ctx}")
            return
        if isinstance(entries, list) and any(
            isinstance(e, dict) and e.get("owned_by") == "me" for e in entries
        ):
            # llama-cpp-python: no metadata with the window; its streams carry no usage and end
            # empty on an over-long prompt, so answers are read whole
            ep.server = "llama-cpp-python"
            ep.stream = False
            ep.slots = 1  # it answers one request at a time: the rest would wait in silence
            ep.notes.append("llama-cpp-python: streams carry no usage; answers are read whole")


def _ollama_context(show: dict) -> int | None:
    for line in str(show.get("parameters") or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit():
            return int(parts[1])
    info = show.get("model_info") or {}
    lengths = [v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)]
    # Ollama serves a model with num_ctx (2,048 unless set), not its trained length
    return min([2048, *lengths]) if lengths else None


# -- the probe -----------------------------------------------------------------------------------
PROBE_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SAMPLE = (
    '[3] tool_call get_reservation_details(reservation_id="ZFA04Y")\n'
    '[4] tool_result get_reservation_details: {"reservation_id": "ZFA04Y", "user_id": '
    '"mia_li_3668", "origin": "JFK", "destination": "SEA", "flight_type": "one_way", '
    '"cabin": "economy", "flights": [{"flight_number": "HAT136", "date": '
    '"2024-05-20", "price": 182}], "payment_history": [{"payment_id": '
    '"credit_card_4421486", "amount": 364}], "insurance": "no"}\n'
) * 6


async def probe(llm, *, console=None) -> tuple[Endpoint, list[dict]]:
    """Ask the server on purpose (see the module docstring): the endpoint found, and one entry
    per check (what was sent, what came back). The endpoint is saved as a `probe` row."""
    settings = llm.settings
    ep = Endpoint.fresh(base_url_of(settings), settings.model)
    await discover(ep, settings)
    llm._endpoint = ep  # noqa: SLF001 - the probe drives the layer's own shaping and switching
    checks: list[dict] = []
    ask = {"role": "user", "content": "Name one large city and its country."}

    async def check(name: str, body: dict, *, stream: bool | None = False) -> tuple[Any, dict]:
        t0 = time.perf_counter()
        sent, mode = await llm.send({"model": settings.model, **body}, stream=stream)
        entry = {"check": name, "mode": mode, "ok": sent.error is None, "seconds": 0.0}
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        if sent.error is not None:
            entry["error"] = f"[{sent.kind}] {sent.error}"[:300]
        checks.append(entry)
        return (json.loads(sent.text) if sent.error is None and sent.text else None), entry

    # structured output: the layer steps down by itself on a rejection; an accepted mode must
    # also give parseable JSON of the shape, or the next one is tried
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "city", "strict": True, "schema": PROBE_SCHEMA},
    }
    while True:
        data, entry = await check(
            f"structured output ({ep.structured})",
            {"messages": [ask], "response_format": fmt, "max_tokens": 40, "temperature": 0},
        )
        ok = False
        if data is not None:
            from pipeline.llm.extract import find_json, split_reasoning

            content, _ = split_reasoning(data["choices"][0]["message"].get("content"))
            try:
                value = find_json(content)
                ok = isinstance(value, dict) and {"city", "country"} <= set(value)
            except ValueError:
                ok = False
            entry["answer"] = (content or "")[:200]
            if "usage" in data:
                entry["usage"] = data["usage"]
        entry["ok"] = ok
        if ok or ep.structured == STRUCTURED[-1]:
            break
        if data is not None:  # taken but not obeyed: a weaker mode may do better
            ep.structured = STRUCTURED[STRUCTURED.index(ep.structured) + 1]
            ep.notes.append(f"structured output answered out of shape: now {ep.structured}")
    if data is not None and "usage" not in data:
        ep.notes.append("no usage in answers: tokens are counted as 0")

    data, entry = await check(
        f"tool calls ({ep.tools})",
        {
            "messages": [
                {"role": "user", "content": "What is the weather in Paris? Use the tool."}
            ],
            "tools": [PROBE_TOOL],
            "max_tokens": 60,
            "temperature": 0,
        },
    )
    if data is not None:
        message = data["choices"][0]["message"]
        called = bool(message.get("tool_calls"))
        entry["answer"] = json.dumps(message.get("tool_calls") or message.get("content"))[:200]
        if not called and ep.tools == "native":
            ep.notes.append("native tool calls taken, but the model answered without a call")

    data, entry = await check(
        "streaming", {"messages": [ask], "max_tokens": 12, "temperature": 0}, stream=True
    )
    if data is not None and "usage" not in data and ep.stream_usage:
        ep.stream_usage = False
        ep.notes.append("streamed answers carry no usage")
    if data is not None:
        message = data["choices"][0]["message"]
        if message.get("reasoning_content") or message.get("reasoning"):
            ep.notes.append("the model returns reasoning apart (reasoning_content)")

    short, _ = await check("prompt size: short", {"messages": [ask], "max_tokens": 1})
    long, _ = await check(
        "prompt size: sample run",
        {"messages": [ask, {"role": "user", "content": SAMPLE}], "max_tokens": 1},
    )
    try:
        extra = long["usage"]["prompt_tokens"] - short["usage"]["prompt_tokens"]
        ep.chars_per_token = round(len(SAMPLE) / extra, 3) if extra > 0 else None
    except (TypeError, KeyError):
        pass
    save(llm.lake, ep, "probe")
    return ep, checks
