"""The model summariser: one structured call per kept cluster, its citations checked by code.

Reads one row per cluster (support, medoid) and the sampled members nearest its centroid
(`summarise.samples_for`); returns one row per cluster (`summarise.SUMMARY_COLUMNS`). Every
request goes through `LLM.map` at once (concurrent across clusters, cached in `llm_calls`, so a
rerun makes no call). The prompt (`prompts/summarise.md`) shows the cluster's support and its
members as L1, L2, ...; the answer (`answers.SummaryAnswer`) must cite at least one of them and
nothing else. A refused answer gets one re-ask showing the error; a call that fails (after the
model layer's retries and its schema repair), a second refusal, or a spent budget leaves the
cluster with its extractive summary (the medoid) and the reason in `summary_fallback`: the
cluster is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.consolidate.answers import SummaryAnswer, citation_problem, resolve_citations
from pipeline.consolidate.prompts import load_prompt
from pipeline.consolidate.render import one_line
from pipeline.consolidate.summarise import SUMMARY_COLUMNS
from pipeline.llm import LLM, ChatRequest, ChatResult

STAGE = "summarise"
CONTENT_CHARS = 600  # of each lesson's content in the prompt
REASK = "{problem}. Reply again with the whole corrected JSON object."


def support_text(row: dict) -> str:
    n, f, s, t = (row[k] for k in ("n_trajectories", "n_failures", "n_successes", "n_tasks"))
    other = n - f - s
    parts = [f"{f} failed", f"{s} successful"] + ([f"{other} of unknown outcome"] if other else [])
    return f"seen in {n} distinct runs ({', '.join(parts)}) across {t} tasks"


@dataclass
class _Ask:
    row: dict
    request: ChatRequest
    shown: dict[str, str]  # L1.. -> lesson_id


SUMMARY_TOKENS = 400  # a title, a few sentences and the ids cited


class ModelSummariser:
    def __init__(self, llm: LLM, *, sample_size: int = 8):
        self.llm = llm
        self.name = llm.settings.model
        self.prompt = load_prompt("summarise")
        self.prompt_version = self.prompt.tag
        self.sample_size = sample_size

    def ask(self, row: dict, lessons: list[dict]) -> _Ask:
        shown = {f"L{i + 1}": x["lesson_id"] for i, x in enumerate(lessons)}
        listed = "\n".join(
            f"[L{i + 1}] {one_line(x['title'])} / {one_line(x['content'] or '')[:CONTENT_CHARS]}"
            for i, x in enumerate(lessons)
        )
        messages = self.prompt.messages(
            section=row["target_section"] or "(none given)",
            kind=row["kind"],
            support=support_text(row),
            n_members=row["n_lessons"],
            n_shown=len(lessons),
            lessons=listed,
        )
        request = ChatRequest(
            messages=messages,
            response_model=SummaryAnswer,
            max_tokens=SUMMARY_TOKENS,
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=row["cluster_id"],
        )
        return _Ask(row, request, shown)

    def summarise(self, clusters: pl.DataFrame, samples: pl.DataFrame) -> pl.DataFrame:
        rows = clusters.sort("cluster_id").to_dicts()
        grouped = samples.group_by("cluster_id", maintain_order=True).agg(
            lessons=pl.struct("lesson_id", "title", "content")
        )
        shown = dict(
            zip(grouped["cluster_id"].to_list(), grouped["lessons"].to_list(), strict=True)
        )
        out: dict[str, dict] = {}
        asks = []
        for r in rows:
            lessons = shown.get(r["cluster_id"]) or [
                {"lesson_id": r["medoid_lesson_id"], "title": r["medoid_title"],
                 "content": r["medoid_content"]}
            ]  # fmt: skip
            asks.append(self.ask(r, lessons))
        refused = self._round(asks, out)
        if refused:
            again = [
                _Ask(a.row, a.request.reask(res.content, REASK.format(problem=problem)), a.shown)
                for a, res, problem in refused
            ]
            still = {
                a.row["cluster_id"]: (res, problem) for a, res, problem in self._round(again, out)
            }
            for a, _, first_problem in refused:
                cid = a.row["cluster_id"]
                if cid in still:
                    res, problem = still[cid]
                    out[cid] = _extractive(a.row, f"refused: {first_problem}; again after a re-ask: {problem}", res.key)  # fmt: skip
                elif out[cid]["fallback"]:  # the re-ask itself failed
                    out[cid]["fallback"] = f"refused: {first_problem}; {out[cid]['fallback']}"
        return pl.DataFrame([out[r["cluster_id"]] for r in rows], schema=SUMMARY_COLUMNS)

    def _round(self, asks: list[_Ask], out: dict) -> list:
        """Ask; accepted summaries and failed calls go to `out`; returns the refused answers."""
        if self.llm.budget_exhausted:
            for a in asks:
                out[a.row["cluster_id"]] = _extractive(a.row, "the model budget is spent", None)
            return []
        results: list[ChatResult] = self.llm.map([a.request for a in asks]) if asks else []
        refused = []
        for a, res in zip(asks, results, strict=True):
            cid = a.row["cluster_id"]
            if not res.ok or res.parsed is None:
                out[cid] = _extractive(
                    a.row, f"model call failed: {res.error or 'no answer'}", res.key
                )
                continue
            answer: SummaryAnswer = res.parsed  # type: ignore[assignment]
            problem = citation_problem(answer.cited_lesson_ids, a.shown)
            if problem is not None:
                refused.append((a, res, problem))
                continue
            out[cid] = {
                "cluster_id": cid,
                "title": one_line(answer.title),
                "content": answer.content.strip(),
                "cited_lesson_ids": resolve_citations(answer.cited_lesson_ids, a.shown),
                "summariser": self.name,
                "fallback": None,
                "llm_call_key": res.key,
            }
        return refused


def _extractive(row: dict, reason: str, key: str | None) -> dict:
    return {
        "cluster_id": row["cluster_id"],
        "title": row["medoid_title"],
        "content": row["medoid_content"],
        "cited_lesson_ids": [row["medoid_lesson_id"]],
        "summariser": "offline",
        "fallback": reason,
        "llm_call_key": key,
    }
