"""Analysts for the Ray tests. Ray workers cannot import the test package, so the fixture ships
this module to them by value (``cloudpickle.register_pickle_by_value``)."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from pipeline.analyse.analyst import AnalysisUsage, BaseAnalyst, LessonDraft
from pipeline.analyse.miner import MinerAnalyst


class Failing(MinerAnalyst):
    """The miner, except that it raises on chosen trajectories (a bug, a bad record)."""

    def __init__(self, bad: set[str], **kw):
        super().__init__(**kw)
        self.bad = bad

    def lessons_for(self, ctx):
        if ctx.tid in self.bad:
            raise ValueError(f"cannot read {ctx.tid}")
        return super().lessons_for(ctx)


class Broken(MinerAnalyst):
    """A bug that takes the whole batch down (not one trajectory)."""

    def analyse_batch(self, batch):
        raise RuntimeError("broken analyst")


class Asking(BaseAnalyst):
    """An HTTP-bound analyst: one chat request per trajectory to an OpenAI-compatible server,
    through the real client; its lesson names the process that asked."""

    name = "single"  # the analyst names the lessons table accepts
    model = "loopback-model"
    prompt_version = "asking-1"
    cpu_bound = False

    def __init__(self, base_url: str):
        super().__init__({"base_url": base_url})
        self._client = None

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_client": None}  # a client holds sockets: each worker opens one

    def analyse_one(self, trajectory: dict[str, Any], steps: pl.DataFrame):
        import openai

        if self._client is None:
            self._client = openai.OpenAI(base_url=self.settings["base_url"], api_key="k")
        reply = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": f"{trajectory['outcome']}: {steps.height}"}],
        )
        lesson = LessonDraft(
            kind="workflow",
            title=f"asked by process {os.getpid()}",
            content=reply.choices[0].message.content or "",
            evidence_steps=[],
        )
        usage = reply.usage
        return [lesson], AnalysisUsage(1, usage.prompt_tokens, usage.completion_tokens, 0.0)
