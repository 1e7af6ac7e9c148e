"""Model settings: which server, which model, which limits; resolved from four places.

Precedence, highest first: command-line overrides (values that are not None), a settings file
(TOML, its ``[model]`` table; ``./trace2skill.toml`` when present and no file is named), the
environment (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``T2S_MODEL``), then the defaults below.

    [model]
    model = "gpt-4o-mini"
    base_url = "http://localhost:8000/v1"
    concurrency = 32
    token_budget = 2_000_000
    [model.prices]            # USD per 1M tokens: [input, output]
    "gpt-4o-mini" = [0.15, 0.60]

The API key is never written anywhere: it is excluded from dumps and reprs, and the request
digest (the cache key) never sees it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import UserError

DEFAULT_SETTINGS_FILE = "trace2skill.toml"
ENVIRONMENT = {"OPENAI_BASE_URL": "base_url", "OPENAI_API_KEY": "api_key", "T2S_MODEL": "model"}


class SettingsError(UserError, ValueError):
    """Settings that cannot be used, with where they came from."""


class ModelSettings(BaseModel):
    """Everything the model layer needs to know; frozen once resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str = Field("offline", description="model name; 'offline' means no model")
    base_url: str | None = Field(None, description="OpenAI-compatible server (…/v1)")
    api_key: str | None = Field(None, repr=False, exclude=True, description="never stored")
    concurrency: int = Field(16, ge=1, le=4096, description="requests in flight at once")
    timeout_s: float = Field(
        300.0,
        gt=0,
        description="longest silence: an attempt ends when no byte has come for this long "
        "(answers are streamed, so a slow server that is making progress is never cut off)",
    )
    timeout_retries: int = Field(1, ge=0, le=10, description="retries after a silence time-out")
    max_retries: int = Field(6, ge=0, le=50, description="retries after the first attempt")
    breaker_after: int = Field(
        5,
        ge=0,
        description="the same non-transient error (auth, not found, bad request, a refusal, or "
        "silence past timeout_s after its retries) this many answers in a row stops the "
        "command's map, naming it (0: never stop)",
    )
    structured_output: str = Field(
        "auto",
        pattern="^(auto|json_schema|json_object_schema|json_object|text)$",
        description="how answers are shaped: auto (the best the server takes), json_schema, "
        "json_object_schema, json_object, or text (the shape in the instructions; no grammar)",
    )
    tool_protocol: str = Field(
        "auto", pattern="^(auto|native|text)$", description="tool calls: auto, native or text"
    )
    stream: bool = Field(True, description="stream answers (time-outs then count silence)")
    context_tokens: int | None = Field(
        None,
        ge=256,
        description="the model's context window per request, when the server "
        "does not say it (llama.cpp /props, vLLM /v1/models and Ollama /api/show do)",
    )
    retry_base_s: float = Field(0.5, ge=0, description="first backoff delay; doubles per retry")
    retry_max_s: float = Field(30.0, ge=0, description="longest backoff delay (and retry-after)")
    temperature: float | None = Field(0.0, ge=0, le=2, description="sampling temperature")
    seed: int | None = Field(None, description="sampling seed sent to the server")
    max_tokens: int | None = Field(None, ge=1, description="completion token limit per call")
    token_budget: int | None = Field(None, ge=0, description="stop cleanly after these tokens")
    cost_budget_usd: float | None = Field(None, ge=0, description="stop cleanly after this cost")
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="model -> (USD per 1M input tokens, per 1M output)"
    )
    batch: bool = Field(False, description="send misses through /v1/files + /v1/batches")
    batch_dir: Path | None = Field(
        None, description="offline batch: write request files here, read result files from here"
    )
    batch_poll_s: float = Field(15.0, gt=0, description="seconds between batch status polls")
    batch_max_requests: int = Field(50_000, ge=1, description="requests per batch job")
    embedder: str = Field("lexical", description="'lexical' | 'openai:<model>' | 'local'")
    embed_batch: int = Field(256, ge=1, description="texts per embeddings request")
    log_flush_rows: int = Field(1000, ge=1, description="llm_calls rows buffered before a write")
    log_flush_s: float = Field(10.0, gt=0, description="longest time a row waits to be written")

    @property
    def offline(self) -> bool:
        return self.model in ("offline", "", None)

    def public(self) -> dict[str, Any]:
        """The settings as plain data, without the API key (for logs and reports)."""
        return self.model_dump(mode="json")

    @classmethod
    def resolve(
        cls, *, settings_file: str | os.PathLike | None = None, **cli_overrides: Any
    ) -> ModelSettings:
        """Merge defaults < environment < settings file < non-None command-line values."""
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for var, field in ENVIRONMENT.items():
            if os.environ.get(var):
                values[field], origin[field] = os.environ[var], f"${var}"
        path = _settings_path(settings_file)
        if path is not None:
            for key, value in _read_file(path).items():
                values[key], origin[key] = value, str(path)
        for key, value in cli_overrides.items():
            if value is not None:
                values[key], origin[key] = value, "the command line"
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            where = ", ".join(f"{k} (from {origin[k]})" for k in unknown)
            raise SettingsError(
                f"unknown model settings: {where}; known: {sorted(cls.model_fields)}"
            )
        try:
            return cls(**values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{err['loc'][0]} (from {origin.get(str(err['loc'][0]), 'defaults')}): {err['msg']}"
                for err in exc.errors()
            )
            raise SettingsError(f"invalid model settings: {problems}") from None


def _settings_path(settings_file: str | os.PathLike | None) -> Path | None:
    if settings_file is not None:
        path = Path(settings_file)
        if not path.is_file():
            raise SettingsError(f"settings file {path} does not exist")
        return path
    default = Path.cwd() / DEFAULT_SETTINGS_FILE
    return default if default.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    table = data.get("model", {})
    if not isinstance(table, dict):
        raise SettingsError(f"settings file {path}: [model] must be a table")
    return table
