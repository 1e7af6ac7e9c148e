"""The model merger: each node of the merge tree merged by the model into statements and a patch.

Reads a level's `MergeJob`s (a node's input statements, each with its clusters and runs) and the
starting skill (`Layout`); returns one `MergeResult` per node. All nodes of a level go to the
server at once through `LLM.map` (concurrent, cached in `llm_calls`). The prompt
(`prompts/merge.md`) names the inputs S1, S2, ... with their evidence (counted by code) and shows
the skill text they target, where anchors come from; the answer (`answers.MergeAnswer`) keeps,
rewrites (merging duplicates, resolving conflicts by evidence or synthesis) or drops each input,
and reports the conflicts. What a statement stands on (clusters, runs, lessons) is computed by
code from the input ids it lists, never taken from the model.

Every input id must be accounted for once (`answers.audit_merge`). An answer that leaves ids out
gets one re-ask naming them. Ids still missing after it: an id the model named in a conflict it
resolved is dropped with that resolution ("omitted by the model after a conflict ..."); any other
is carried by the offline merger (a model's omission is a fault, not a judgement, and a lesson
that passed the support filter is not lost to it). The node records it in `fallback` and
`n_omitted`, and the run warns. A failed call (after the model layer's retries and schema
repair) or a spent budget merges the node offline, recorded in `fallback`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.consolidate.answers import MergeAnswer, MergeAudit, audit_merge, reask_text
from pipeline.consolidate.conflicts import Item, section_key
from pipeline.consolidate.merge import MergeJob, MergeResult, OfflineMerger, order
from pipeline.consolidate.prompts import load_prompt
from pipeline.consolidate.render import Layout, evidence_note, one_line
from pipeline.ids import digest
from pipeline.llm import LLM, ChatRequest, ChatResult

STAGE = "merge"
DETAIL_CHARS = 500  # of each input's detail in the prompt
SKILL_CHARS = 6000  # of the skill's section text in the prompt


def skill_context(layout: Layout, sections: set[str], max_chars: int = SKILL_CHARS) -> str:
    """The skill as a merge prompt shows it: its outline (headings, files) and the text of the
    sections in `sections` (section keys), where anchors are copied from."""
    doc = layout.base.skill
    heads = doc.headings()
    if not any(ln.text.strip() for ln in doc.lines) or not heads:
        return "(a new skill: no sections yet)"
    outline = "\n".join(f"{'  ' * (h.level - 1)}- {h.title}" for h in heads)
    files = sorted(p for p in layout.base.files if p != "SKILL.md")
    parts = [f"Sections:\n{outline}"]
    if files:
        parts.append("Files: " + ", ".join(files))
    wanted = [h for h in heads if section_key(h.title) in sections]
    room = max_chars // max(len(wanted), 1)
    for h in wanted:
        found = doc.find_section(h.title)
        body = "\n".join(ln.text for ln in doc.lines[h.index : found[1]]).strip() if found else ""
        parts.append(body if len(body) <= room else body[:room] + "\n[...]")
    return "\n\n".join(parts)


def show_item(alias: str, it: Item, layout: Layout, *, placement: bool = True) -> str:
    """An input as a prompt lists it: section, evidence, title, detail and (with `placement`)
    where it goes in the skill and what it removes."""
    lines = [
        f"[{alias}] section: {it.section or '(none)'} | {evidence_note(it, layout.runs)}",
        f"  title: {one_line(it.title)}",
    ]
    detail = one_line(it.detail or "")[:DETAIL_CHARS]
    if detail:
        lines.append(f"  detail: {detail}")
    if not placement:
        return "\n".join(lines)
    if it.edit and it.anchor:
        lines.append(f"  placement: {it.edit} at {it.anchor!r}")
    if it.removes:
        lines.append(f"  removes: {it.removes}")
    return "\n".join(lines)


def statement_item(st, parts: list[Item], model: str) -> Item:
    """A model's statement over the input items it lists: support from code, words from the model."""
    best = sorted(parts, key=lambda i: (-i.support, i.title, i.item_id))[0]
    clusters = tuple(sorted(c for i in parts for c in i.cluster_ids))
    edit = st.edit if st.edit != "append" and st.anchor else None
    anchor = st.anchor if edit else None
    section = one_line(st.section) or best.section
    return Item(
        item_id=digest("item", clusters, st.title, st.detail, section, edit, anchor, st.removes),
        section=section,
        kind=best.kind,
        op=best.op,
        title=one_line(st.title),
        detail=(st.detail or "").strip(),
        cluster_ids=clusters,
        runs=np.unique(np.concatenate([i.runs for i in parts])),
        n_lessons=sum(i.n_lessons for i in parts),
        tool_name=best.tool_name,
        lesson_ids=tuple(sorted({x for i in parts for x in i.lesson_ids})),
        note=f"{model}: from {len(parts)} input(s)",
        edit=edit,
        anchor=anchor,
        removes=(st.removes or "").strip() or None,
        children=parts,
    )


@dataclass
class _Ask:
    job: MergeJob
    alias: dict[str, Item]
    request: ChatRequest


# the answer's size: a statement per input at most, and the frame
MERGE_TOKENS_BASE, MERGE_TOKENS_PER_INPUT, MERGE_TOKENS_MAX = 150, 250, 2000


class ModelMerger:
    def __init__(self, llm: LLM, layout: Layout, *, skill_name: str):
        self.llm = llm
        self.layout = layout
        self.skill_name = skill_name
        self.name = llm.settings.model
        self.prompt = load_prompt("merge")
        self.prompt_version = self.prompt.tag
        self.offline = OfflineMerger()

    def ask(self, job: MergeJob) -> _Ask:
        alias = {f"S{k + 1}": it for k, it in enumerate(job.inputs)}
        messages = self.prompt.messages(
            skill_name=self.skill_name,
            skill=skill_context(self.layout, {section_key(i.section) for i in job.inputs}),
            n_inputs=len(alias),
            inputs="\n\n".join(show_item(a, it, self.layout) for a, it in alias.items()),
        )
        request = ChatRequest(
            messages=messages,
            response_model=MergeAnswer,
            max_tokens=min(
                MERGE_TOKENS_BASE + MERGE_TOKENS_PER_INPUT * len(alias), MERGE_TOKENS_MAX
            ),
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=job.node_id,
        )
        return _Ask(job, alias, request)

    def merge_level(self, jobs: list[MergeJob]) -> list[MergeResult]:
        if self.llm.budget_exhausted:
            return [self._offline(j, "the model budget is spent", None) for j in jobs]
        asks = [self.ask(j) for j in jobs]
        results = self.llm.map([a.request for a in asks])
        out: list[MergeResult | None] = [None] * len(jobs)
        again: list[tuple[int, _Ask, ChatResult, MergeAudit]] = []
        for k, (a, res) in enumerate(zip(asks, results, strict=True)):
            if not res.ok or res.parsed is None:
                out[k] = self._offline(a.job, f"model call failed: {res.error}", res.key)
                continue
            audit = audit_merge(res.parsed, list(a.alias))
            if audit.missing:
                again.append((k, a, res, audit))
            else:
                out[k] = self.result(a, res.parsed, audit, res.key)
        if again and self.llm.budget_exhausted:
            for k, a, res, audit in again:
                note = "not re-asked: the model budget is spent"
                out[k] = self.result(a, res.parsed, audit, res.key, note=note)
        elif again:
            reasks = [a.request.reask(res.content, reask_text(audit)) for _, a, res, audit in again]
            for (k, a, res, audit), r2 in zip(again, self.llm.map(reasks), strict=True):
                if r2.ok and r2.parsed is not None:
                    audit2 = audit_merge(r2.parsed, list(a.alias))
                    out[k] = self.result(a, r2.parsed, audit2, res.key, repair_key=r2.key)
                else:
                    note = f"the re-ask failed ({r2.error}): the first answer is used"
                    out[k] = self.result(
                        a, res.parsed, audit, res.key, repair_key=r2.key, note=note
                    )
        return out  # type: ignore[return-value]

    def _offline(self, job: MergeJob, why: str, key: str | None) -> MergeResult:
        res = self.offline.merge(job.level, job.section, job.inputs)
        res.fallback, res.llm_call_key, res.model = f"merged offline: {why}", key, "offline"
        return res

    def result(
        self,
        a: _Ask,
        answer: MergeAnswer,
        audit: MergeAudit,
        key: str,
        *,
        repair_key: str | None = None,
        note: str | None = None,
    ) -> MergeResult:
        """The node's statements from an audited answer, with the omission policy applied."""
        items = [a.alias[i] for i in audit.kept]
        items += [statement_item(st, [a.alias[i] for i in ids], self.name) for st, ids in audit.statements]  # fmt: skip
        dropped = {
            c: f"model: {reason}" for i, reason in audit.dropped.items() for c in a.alias[i].cluster_ids
        }  # fmt: skip
        conflicts = [
            {
                "kind": "model",
                "ids": c.ids,
                "cluster_ids": sorted({x for i in c.ids if i in a.alias for x in a.alias[i].cluster_ids}),
                "resolution": c.resolution,
            }
            for c in answer.conflicts
        ]  # fmt: skip
        notes = [note] if note else []
        notes += audit.notes
        if audit.missing:
            named = {i: c.resolution for c in answer.conflicts for i in c.ids}
            lost = [i for i in audit.missing if i in named]
            carry = [a.alias[i] for i in audit.missing if i not in named]
            for i in lost:
                why = f"omitted by the model after a conflict it resolved: {named[i]}"
                dropped |= {c: why for c in a.alias[i].cluster_ids}
            if carry:
                off = self.offline.merge(a.job.level, a.job.section, carry)
                items += off.items
                dropped |= off.dropped
                conflicts += off.conflicts
            notes.append(
                f"the model left out {', '.join(audit.missing)} after a re-ask: "
                f"{len(carry)} carried by the offline merger, {len(lost)} dropped as omitted "
                "after a conflict"
            )
        return MergeResult(
            items=order(items),
            conflicts=conflicts,
            dropped=dropped,
            llm_call_key=key,
            repair_call_key=repair_key,
            fallback="; ".join(notes) or None,
            n_omitted=len(audit.missing),
        )
