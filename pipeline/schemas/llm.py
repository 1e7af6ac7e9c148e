"""The model layer's table: llm_calls, cache and cost log in one."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from pipeline.schemas.registry import register
from pipeline.schemas.trajectory import Strict


@register("llm_calls")
class LlmCalls(pa.DataFrameModel):
    """One row per model request answered (from the server, from the cache, or with an error).

    A chat request is one row; an embeddings request is one row per input text, so every text
    is cached on its own. A key may have several rows over time (a first error, a later success,
    cache hits); only rows with neither an error nor cache_hit are served from the cache.
    """

    call_id: str = pa.Field(description="unique id of this row (key plus time and attempt)")
    key: str = pa.Field(
        description="cache key: digest of the canonical request with every generation parameter and the prompt version; never the API key or base URL"
    )
    stage: str = pa.Field(
        description="pipeline stage that asked (analyse, summarise, merge, rollout, embed, ...)"
    )
    kind: str = pa.Field(isin=["chat", "embedding"], description="endpoint")
    model: str = pa.Field(description="model name as sent")
    params: str = pa.Field(
        description="JSON of the generation parameters (temperature, seed, max_tokens, response format, tools, ...)"
    )
    prompt_version: str = pa.Field(nullable=True, description="version of the prompt template")
    request: str = pa.Field(description="JSON of the request body (messages or inputs)")
    response: str = pa.Field(
        nullable=True,
        description="JSON of the response body (an embedding's vector is in `vector`); on an error the last body received, if any; null on a cache hit",
    )
    vector: pl.List(pl.Float32) = pa.Field(
        nullable=True, description="the embedding of one text (embedding rows that succeeded)"
    )
    finish_reason: str = pa.Field(
        nullable=True, description="why generation stopped (stop, length, tool_calls, ...)"
    )
    tag: str = pa.Field(
        nullable=True, description="free label of the caller (e.g. a trajectory_id), not in the key"
    )
    tokens_in: int = pa.Field(
        ge=0, description="prompt tokens reported by the server (0 on a cache hit)"
    )
    tokens_out: int = pa.Field(ge=0, description="completion tokens (0 on a cache hit)")
    latency_ms: float = pa.Field(ge=0, description="wall time of the call including retries")
    cost_usd: float = pa.Field(
        ge=0, description="cost at the configured prices (0 on a cache hit or an unpriced model)"
    )
    attempts: int = pa.Field(ge=0, description="HTTP attempts made (0 on a cache hit)")
    error: str = pa.Field(
        nullable=True, description="why the call failed, after retries and the repair attempt"
    )
    error_kind: str = pa.Field(
        nullable=True,
        description="kind of the failure: rate_limit, server, timeout, connection, malformed, "
        "rejected, context, auth, not_found, bad_request, length (cut at max_tokens), "
        "invalid_output, budget, internal",
    )
    mode: str = pa.Field(
        nullable=True,
        description="how the request was shaped for the server: structured output "
        "(json_schema, json_object_schema, json_object, text), tool protocol, streaming",
    )
    reasoning: str = pa.Field(
        nullable=True,
        description="the model's reasoning (reasoning_content, <think> blocks), kept apart from the answer",
    )
    cache_hit: bool = pa.Field(description="answered from this table without calling the server")
    batch_id: str = pa.Field(nullable=True, description="batch-API job that answered it, if any")
    created_at: pl.Datetime("us", "UTC") = pa.Field(description="when the answer arrived")

    class Config(Strict):
        pass


@register("model_endpoints")
class ModelEndpoints(pa.DataFrameModel):
    """One row per look at a (server, model): a probe, the first use, or a switch after a rejection.

    The latest row of an endpoint is what the model layer uses; earlier rows say what was found
    and when. The server address is stored without credentials; the API key never.
    """

    endpoint_id: str = pa.Field(description="digest of base_url and model")
    base_url: str = pa.Field(description="server address (…/v1), without credentials")
    model: str = pa.Field(description="model name as sent")
    source: str = pa.Field(
        isin=["probe", "first_use", "switch", "learned"],
        description="probe (models check), first_use (metadata read before the first call), "
        "switch (a request was rejected for its shape), learned (e.g. the window from an error)",
    )
    server: str = pa.Field(description="llama.cpp, llama-cpp-python, vllm, ollama, ... or unknown")
    structured: str = pa.Field(
        isin=["json_schema", "json_object_schema", "json_object", "text"],
        description="structured-output mode requests use",
    )
    tools: str = pa.Field(isin=["native", "text"], description="tool-call protocol")
    stream: bool = pa.Field(description="answers are streamed")
    stream_usage: bool = pa.Field(description="a streamed answer asks for its usage")
    token_param: str = pa.Field(description="name of the completion-token limit sent")
    dropped: str = pa.Field(description="JSON list of parameters the model refuses")
    context_tokens: int = pa.Field(nullable=True, description="context window per request")
    slots: int = pa.Field(nullable=True, description="requests the server runs at once")
    chars_per_token: float = pa.Field(
        nullable=True, description="prompt characters per token, from the server's counts"
    )
    notes: str = pa.Field(description="JSON list: what was found or switched, and why")
    recorded_at: pl.Datetime("us", "UTC") = pa.Field(description="when")

    class Config(Strict):
        pass
