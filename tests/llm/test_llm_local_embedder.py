"""The local embedder (all-MiniLM-L6-v2 in numpy): skipped unless the optional extra is installed."""

import numpy as np
import pytest

from pipeline.llm import LLM, ModelSettings, get_embedder

pytestmark = pytest.mark.embeddings

pytest.importorskip("tokenizers")
local = pytest.importorskip("pipeline.llm.local")
try:
    local.model_dir()
except RuntimeError as exc:
    pytest.skip(str(exc), allow_module_level=True)


def test_matches_the_published_similarities():
    # The sentence-transformers documentation gives these for all-MiniLM-L6-v2.
    sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    vectors = get_embedder("local").embed(sentences)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] == pytest.approx(0.6660, abs=6e-4)
    assert sims[0, 2] == pytest.approx(0.1046, abs=6e-4)
    assert sims[1, 2] == pytest.approx(0.1411, abs=6e-4)


def test_batching_and_padding_do_not_change_a_vector():
    embedder = local.LocalEmbedder(batch_size=2)
    texts = ["short", "a much longer sentence with many more tokens in it than the other", ""]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_llm_embed_with_the_local_embedder(lake):
    vectors = LLM(ModelSettings(embedder="local"), lake).embed(["a", "b"])
    assert vectors.shape == (2, 384) and lake.parts("llm_calls") == []
