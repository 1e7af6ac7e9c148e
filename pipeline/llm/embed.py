"""Text embeddings behind one interface: `get_embedder(name).embed(texts) -> (n, d) float32`.

Vectors are L2-normalised, so a dot product is the cosine similarity.

- ``lexical`` (default, no dependencies): hashed character 3- to 5-grams of the lower-cased text,
  sub-linear term weights, 512 dimensions. Deterministic across processes and versions (the hash
  is blake2b, not Python's). Good for near-duplicates and paraphrases that share wording; it does
  not know synonyms.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

import numpy as np

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


def get_embedder(name: str = "lexical", **options) -> Embedder:
    """An embedder by name: ``lexical`` (default)."""
    if name in ("lexical", "", None):
        return LexicalEmbedder(**options)
    raise ValueError(f"unknown embedder {name!r}; known: lexical")
