"""Text embeddings behind one interface: `get_embedder(name).embed(texts) -> (n, d) float32`.

Vectors are L2-normalised, so a dot product is the cosine similarity.

- ``lexical`` (default, no dependencies): hashed character 3- to 5-grams of the lower-cased text,
  sub-linear term weights, 512 dimensions. Deterministic across processes and versions (the hash
  is blake2b, not Python's). Good for near-duplicates and paraphrases that share wording; it does
  not know synonyms.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.errors import UserError

if TYPE_CHECKING:
    from pipeline.lake import Lake
    from pipeline.llm.client import LLM
    from pipeline.settings import ModelSettings

_WS = re.compile(r"\s+")


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class LexicalEmbedder:
    """Hashed character n-grams: a bag-of-ngrams vector folded into `dim` buckets."""

    def __init__(self, dim: int = 512, ngrams: tuple[int, ...] = (3, 4, 5)):
        self.dim = dim
        self.ngrams = ngrams
        self.name = f"lexical-{dim}"
        self._bucket: dict[str, tuple[int, float]] = {}

    def _slot(self, gram: str) -> tuple[int, float]:
        hit = self._bucket.get(gram)
        if hit is None:
            h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
            hit = (h % self.dim, 1.0 if (h >> 63) & 1 else -1.0)
            if len(self._bucket) < 2_000_000:
                self._bucket[gram] = hit
        return hit

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            norm = " " + _WS.sub(" ", (text or "").lower()).strip() + " "
            counts: dict[int, float] = {}
            for n in self.ngrams:
                for i in range(max(len(norm) - n + 1, 0)):
                    slot, sign = self._slot(norm[i : i + n])
                    counts[slot] = counts.get(slot, 0.0) + sign
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64)
                val = np.fromiter(counts.values(), dtype=np.float32)
                out[row, idx] = np.sign(val) * np.log1p(np.abs(val))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class EmbeddingError(UserError, RuntimeError):
    """Some texts could not be embedded (their error rows are in llm_calls)."""


class ServerEmbedder:
    """``openai:<model>``: the server's embeddings, through an `LLM` (batched, cached, logged)."""

    def __init__(self, model: str, settings: ModelSettings | None, lake: Lake | None, console=None):
        from pipeline.llm.client import LLM
        from pipeline.settings import ModelSettings

        base = settings or ModelSettings.resolve()
        # The chat model is irrelevant here, but "offline" would switch the transport off.
        chat_model = base.model if not base.offline else model
        self.llm = LLM(
            base.model_copy(update={"embedder": f"openai:{model}", "model": chat_model}),
            lake,
            console,
        )
        self.name = f"openai:{model}"
        self.dim = 0  # known after the first call

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.llm.embed(texts)
        self.dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else self.dim
        return vectors


def get_embedder(
    name: str = "lexical",
    settings: ModelSettings | None = None,
    lake: Lake | None = None,
    **options,
) -> Embedder:
    """An embedder by name: ``lexical`` (default), ``openai:<model>``, ``local``."""
    if name in ("lexical", "", None):
        return LexicalEmbedder(**options)
    if name.startswith("openai:") and len(name) > len("openai:"):
        return ServerEmbedder(name.split(":", 1)[1], settings, lake, options.get("console"))
    if name == "local":
        from pipeline.llm.local import LocalEmbedder

        return LocalEmbedder(**options)
    raise ValueError(f"unknown embedder {name!r}; known: lexical, openai:<model>, local")


def _load_embeddings(n: int):
    def load(text: str) -> dict:
        from pipeline.llm.types import MalformedResponse

        try:
            data = json.loads(text)
            vectors = [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MalformedResponse(
                f"malformed embeddings body ({exc.__class__.__name__})"
            ) from None
        if len(vectors) != n or any(not isinstance(v, list) or not v for v in vectors):
            raise MalformedResponse(f"embeddings body has {len(vectors)} vectors for {n} texts")
        data["vectors"] = vectors
        return data

    return load


def _split(total: int, texts: list[str]) -> list[int]:
    """Share a request's token count among its texts, by length, summing exactly to `total`."""
    lengths = np.array([max(len(t), 1) for t in texts], dtype=np.float64)
    shares = np.floor(total * lengths / lengths.sum()).astype(np.int64)
    shares[-1] += total - int(shares.sum())
    return shares.tolist()


async def aembed(llm: LLM, texts: list[str], *, stage: str = "embed") -> np.ndarray:
    """Embeddings of `texts` for `llm.settings.embedder`; server embeddings cached per text."""
    import asyncio
    import time

    from pipeline.llm.types import embedding_key

    name = llm.settings.embedder
    if not name.startswith("openai:"):
        return await asyncio.to_thread(get_embedder(name).embed, list(texts))
    model = name.split(":", 1)[1]
    if llm.transport is None:
        raise EmbeddingError(f"embedder {name} needs a server, but the model layer is offline")
    keys = [embedding_key(model, t) for t in texts]
    unique = dict(zip(keys, texts, strict=True))
    found = {k: v for k, (_, v) in llm.log.get_many(list(unique)).items() if v is not None}
    params = json.dumps({"encoding_format": "float"})
    errors: dict[str, str] = {}

    def row(key: str, **fields) -> None:
        request = json.dumps(unique[key], ensure_ascii=False)
        llm.log.add(key=key, stage=stage, kind="embedding", model=model, params=params,
                    request=request, **fields)  # fmt: skip

    for key in found:
        llm.usage.cache_hits += 1
        row(key, cache_hit=True)
    missing = [k for k in unique if k not in found]
    chunks = [
        missing[i : i + llm.settings.embed_batch]
        for i in range(0, len(missing), llm.settings.embed_batch)
    ]
    sem = asyncio.Semaphore(llm.settings.concurrency)

    async def one(chunk: list[str]) -> None:
        async with sem:
            t0 = time.perf_counter()
            if llm.over_budget():
                for key in chunk:
                    errors[key] = "budget exhausted"
                    llm.usage.errors += 1
                    row(key, error=errors[key])
                return
            inputs = [unique[k] for k in chunk]
            body = {"model": model, "input": inputs, "encoding_format": "float"}
            sent = await llm.transport.post("embedding", body, _load_embeddings(len(chunk)))
            latency = (time.perf_counter() - t0) * 1000.0
            if sent.error is not None:
                llm.count(0, 0, 0.0, ok=False)
                for key in chunk:
                    errors[key] = sent.error
                    row(key, error=sent.error, attempts=sent.attempts, latency_ms=latency)
                return
            tokens = int((sent.data.get("usage") or {}).get("prompt_tokens") or 0)
            shares = _split(tokens, inputs)
            llm.count(tokens, 0, cost := llm.cost(model, tokens, 0), ok=True)
            meta = json.dumps({"model": sent.data.get("model", model), "n_inputs": len(chunk)})
            for key, vector, share in zip(chunk, sent.data["vectors"], shares, strict=True):
                found[key] = vector
                row(key, response=meta, vector=[float(x) for x in vector], tokens_in=share,
                    cost_usd=cost * share / tokens if tokens else 0.0,
                    attempts=sent.attempts, latency_ms=latency)  # fmt: skip
            llm.over_budget()

    await asyncio.gather(*(one(c) for c in chunks))
    llm.log.flush()
    if errors:
        first = next(iter(errors.values()))
        raise EmbeddingError(
            f"{len(errors)} of {len(unique)} texts could not be embedded with {model} "
            f"(first reason: {first}); the others are cached, a rerun retries only these"
        )
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    out = np.asarray([found[k] for k in keys], dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)
