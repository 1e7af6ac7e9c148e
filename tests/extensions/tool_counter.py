"""An example analyst: one offline lesson per run about the calls it made to one tool.

A third-party analyst is a factory (here a `BaseAnalyst` subclass, which supplies the protocol's
defaults and turns an exception in one run into that run's error row) and an entry point:

    [project.entry-points."trace2skill.analysts"]
    tool-counter = "tool_counter:ToolCounter"

Its options come through `analyse(..., options={"tool": "grep"})`; ``option_names`` declares them
so that another analyst given one is told whose option it is.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.analyse.analyst import AnalysisUsage, BaseAnalyst, LessonDraft


class ToolCounter(BaseAnalyst):
    name = "tool-counter"  # the entry point's name
    model = "offline"  # no model: needs_model stays False
    prompt_version = "tool-counter-1"  # bump when its lessons change: runs are analysed again
    option_names = ("tool",)

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__({"tool": "grep", **(options or {})})  # settings: the configuration

    def analyse_one(
        self, trajectory: dict[str, Any], steps: pl.DataFrame
    ) -> tuple[list[LessonDraft], AnalysisUsage]:
        tool = self.settings["tool"]
        calls = steps.filter((pl.col("kind") == "tool_call") & (pl.col("tool_name") == tool))
        if calls.is_empty():
            return [], AnalysisUsage()
        kind = "success_lesson" if trajectory["outcome"] == "success" else "failure_lesson"
        lesson = LessonDraft(
            kind=kind,
            title=f"{tool} was called {calls.height} time(s)",
            content=f"In a run that ended in {trajectory['outcome']}, the agent called {tool}.",
            evidence_steps=calls["step_idx"].to_list(),
            tool_name=tool,
            rule="tool-count",
        )
        return [lesson], AnalysisUsage()
