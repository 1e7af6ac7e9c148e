"""The model layer: any OpenAI-compatible server, a cache that is also the cost log, embeddings.

from pipeline.llm import LLM, ChatRequest, ModelSettings
settings = ModelSettings.resolve(model="gpt-4o-mini")
with LLM(settings, lake) as llm:
    results = llm.map([ChatRequest(messages=[...], response_model=Lesson, stage="analyse")])
"""

from pipeline.llm.client import LLM, run_sync
from pipeline.llm.embed import EmbeddingError, get_embedder
from pipeline.llm.types import ChatRequest, ChatResult, Usage
from pipeline.settings import ModelSettings, SettingsError

__all__ = [
    "LLM",
    "ChatRequest",
    "ChatResult",
    "EmbeddingError",
    "ModelSettings",
    "SettingsError",
    "Usage",
    "get_embedder",
    "run_sync",
]
