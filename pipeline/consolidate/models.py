"""Which summariser, merger and sequential editor a consolidation uses, and what they cost.

`Models.of(settings, lake, console)` gives the offline ones when the model is 'offline', else an
`LLM` client (every call logged and cached in `llm_calls`, budgets honoured) with the model
summariser, merger and editor built on it. `identity()` is what goes into the run id (prompt
versions and the generation parameters that change answers); `usage()` counts the calls (the
embedder's included), tokens and cost; `report()` warns about every fallback the run took.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.console import Console
from pipeline.consolidate.merge import OfflineMerger
from pipeline.consolidate.outcome import MergeOutcome
from pipeline.consolidate.render import Layout
from pipeline.consolidate.summarise import ExtractiveSummariser
from pipeline.lake import Lake
from pipeline.llm import LLM, ModelSettings, Usage


@dataclass
class Models:
    settings: ModelSettings | None
    llm: LLM | None = None

    @classmethod
    def of(cls, settings: ModelSettings | None, lake: Lake, console: Console) -> Models:
        if settings is None or settings.offline:
            return cls(settings)
        return cls(settings, LLM(settings, lake, console))

    @property
    def model(self) -> str:
        return "offline" if self.llm is None else self.llm.settings.model

    def summariser(self, sample_size: int):
        if self.llm is None:
            return ExtractiveSummariser()
        from pipeline.consolidate.model_summarise import ModelSummariser

        return ModelSummariser(self.llm, sample_size=sample_size)

    def merger(self, layout: Layout, name: str):
        if self.llm is None:
            return OfflineMerger()
        from pipeline.consolidate.model_merge import ModelMerger

        return ModelMerger(self.llm, layout, skill_name=name)

    def editor(self, layout: Layout, name: str):
        if self.llm is None:
            return None
        from pipeline.consolidate.model_sequential import ModelEditor

        return ModelEditor(self.llm, layout, skill_name=name)

    def identity(self, mode: str, sample_size: int) -> dict:
        """What about the models changes the result (for the run id and `settings`)."""
        from pipeline.consolidate.prompts import load_prompt

        if self.llm is None:
            return {"summariser": "extractive-1", "merger": "offline"}
        s = self.llm.settings
        prompts = ["summarise", "merge"] if mode == "parallel" else ["sequential"]
        return {
            "prompts": [load_prompt(p).tag for p in prompts],
            "summary_sample": sample_size if mode == "parallel" else None,
            "temperature": s.temperature,
            "model_seed": s.seed,
            "max_tokens": s.max_tokens,
        }

    def usage(self, embedder) -> Usage:
        total = Usage()
        for llm in (self.llm, getattr(embedder, "llm", None)):
            if llm is None:
                continue
            u = llm.usage
            total.n_calls += u.n_calls
            total.cache_hits += u.cache_hits
            total.errors += u.errors
            total.tokens_in += u.tokens_in
            total.tokens_out += u.tokens_out
            total.cost_usd += u.cost_usd
        return total

    @property
    def budget_spent(self) -> bool:
        return self.llm is not None and self.llm.budget_exhausted

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()

    def report(self, outcome: MergeOutcome, console: Console) -> tuple[int, int]:
        """Warn about the model's fallbacks; returns (fallbacks, omitted inputs)."""
        if self.llm is None:
            return 0, 0
        summaries = outcome.clusters.filter(outcome.clusters["summary_fallback"].is_not_null())
        offline = [n for n in outcome.nodes if n["model"] == "offline"]
        omitted = [n for n in outcome.nodes if n.get("n_omitted")]
        if summaries.height:
            first = summaries.row(0, named=True)
            console.warn(
                f"{summaries.height} cluster(s) kept their extractive summary, e.g. "
                f"{first['cluster_id']}: {first['summary_fallback']} (clusters.summary_fallback)"
            )
        if offline:
            console.warn(
                f"{len(offline)} merge step(s) done offline, e.g. {offline[0]['node_id']}: "
                f"{offline[0]['fallback']} (merge_nodes.fallback)"
            )
        for n in omitted[:5]:
            console.warn(f"merge node {n['node_id']}: {n['fallback']}")
        if len(omitted) > 5:
            console.warn(f"... and {len(omitted) - 5} more merge node(s) with omitted inputs (merge_nodes.n_omitted)")  # fmt: skip
        if self.budget_spent:
            u = self.llm.usage
            console.warn(
                f"the model budget is spent ({u.tokens:,} tokens, ${u.cost_usd:.4f}): what "
                "remained was done offline; a rerun resumes from the cached answers"
            )
        n_omitted = sum(n["n_omitted"] or 0 for n in omitted)
        return summaries.height + len(offline), n_omitted
