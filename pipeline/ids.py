"""Stable content-hash ids: a digest of canonical JSON, independent of library versions.

Never use polars' or Python's `hash()` for anything persisted: both change between versions
and processes. Every id in the lake comes from `digest()`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_VERSION = "v1"
ID_CHARS = 20  # 80 bits: collision odds stay negligible well past a billion rows


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(*parts: Any, length: int = ID_CHARS) -> str:
    """Hex blake2b digest of the canonical JSON of `parts`, tagged with the id version."""
    payload = canonical_json([ID_VERSION, *parts]).encode("utf-8")
    return hashlib.blake2b(payload, digest_size=32).hexdigest()[:length]


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
