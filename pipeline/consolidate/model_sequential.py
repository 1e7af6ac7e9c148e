"""The sequential baseline with a model: each batch of lessons edited into the skill by the model.

Reads the skill so far (`statements.State`: statements and the lesson rows behind them) and one
batch; changes the state. One request per batch (`prompts/sequential.md`), in order: the model
sees the base skill's text where the batch's lessons go, the statements so far of those sections
(ids S1.., with their evidence; other sections counted) and the batch (ids L1..), and answers
with a `MergeAnswer`: lessons kept as new statements, statements written or rewritten from
lessons and existing statements (a lesson joining a statement adds its run to the evidence), and
lessons or statements dropped with a reason.

Every lesson id must be accounted for once; an answer that leaves some out gets one re-ask naming
them. Lessons still missing after it: one the model named in a conflict is dropped as "omitted by
the model after a conflict ..."; the others are edited offline (`State.offline`), so nothing is
lost to an omission. A failed call or a spent budget edits the whole batch offline. The batch's
merge node records the calls, the fallback and the count of omitted lessons.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from pipeline.consolidate.answers import MergeAnswer, MergeAudit, audit_merge, reask_text
from pipeline.consolidate.conflicts import position, section_key, stem
from pipeline.consolidate.model_merge import DETAIL_CHARS, show_item, skill_context
from pipeline.consolidate.prompts import load_prompt
from pipeline.consolidate.render import Layout, one_line
from pipeline.consolidate.statements import Edit, State
from pipeline.llm import LLM, ChatRequest

STAGE = "merge"
MAX_SHOWN = 300  # statements of the batch's sections shown in one prompt
OUTCOMES = {"failure": "a failed run", "success": "a successful run"}


EDIT_TOKENS = 2000  # one batch's edits: a few statements


@dataclass
class _Ask:
    request: ChatRequest
    statements: dict[str, int]  # S1.. -> statement index
    lessons: dict[str, int]  # L1.. -> row


class ModelEditor:
    def __init__(self, llm: LLM, layout: Layout, *, skill_name: str):
        self.llm = llm
        self.layout = layout
        self.skill_name = skill_name
        self.name = llm.settings.model
        self.prompt = load_prompt("sequential")
        self.prompt_version = self.prompt.tag

    def _section(self, st: State, sid: int) -> str:
        s = st.stmts[sid]
        return section_key(s.section or st.sections[s.first])

    def ask(self, st: State, batch: list[int], node_id: str) -> _Ask:
        wanted = {section_key(st.sections[r]) for r in batch}
        live = [s.idx for s in st.stmts if st.live(s.idx)]
        here = [i for i in live if self._section(st, i) in wanted][-MAX_SHOWN:]
        shown = {f"S{k + 1}": sid for k, sid in enumerate(here)}
        blocks = [
            show_item(alias, st.item(st.stmts[sid]), self.layout, placement=False)
            for alias, sid in shown.items()
        ]
        others = Counter(self._section(st, i) for i in live if self._section(st, i) not in wanted)
        if others:
            counted = ", ".join(f"{k or '(none)'}: {n}" for k, n in sorted(others.items()))
            blocks.append(f"(statements of other sections, not shown: {counted})")
        if len(here) < len(live) - sum(others.values()):
            blocks.append("(older statements of these sections not shown)")
        lessons = {f"L{k + 1}": r for k, r in enumerate(batch)}
        listed = []
        for alias, r in lessons.items():
            f = st.facts[r]
            outcome = OUTCOMES.get(f["outcome"], "a run of unknown outcome")
            run = f"{outcome} of task {f['task_id'] or '(unknown)'}"
            listed.append(
                f"[{alias}] section: {st.sections[r] or '(none)'} | {f['kind']} | from {run}\n"
                f"  title: {one_line(st.titles[r])}\n"
                f"  content: {one_line(f['content'] or '')[:DETAIL_CHARS]}"
            )
        messages = self.prompt.messages(
            skill_name=self.skill_name,
            skill=skill_context(self.layout, wanted),
            n_statements=len(live),
            statements="\n\n".join(blocks) or "(none yet)",
            n_lessons=len(lessons),
            lessons="\n\n".join(listed),
        )
        request = ChatRequest(
            messages=messages,
            response_model=MergeAnswer,
            max_tokens=EDIT_TOKENS,
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=node_id,
        )
        return _Ask(request, shown, lessons)

    def edit(self, st: State, batch: list[int], edit: Edit) -> None:
        if self.llm.budget_exhausted:
            return self._offline(st, batch, edit, "the model budget is spent")
        a = self.ask(st, batch, edit.node_id)
        [res] = self.llm.map([a.request])
        edit.llm_call_key = res.key
        if not res.ok or res.parsed is None:
            return self._offline(st, batch, edit, f"model call failed: {res.error}")
        answer: MergeAnswer = res.parsed  # type: ignore[assignment]
        ids = [*a.statements, *a.lessons]
        audit = audit_merge(answer, ids, required=list(a.lessons))
        notes = []
        if audit.missing and self.llm.budget_exhausted:
            notes.append("not re-asked: the model budget is spent")
        elif audit.missing:
            [again] = self.llm.map([a.request.reask(res.content, reask_text(audit, "lesson"))])
            edit.repair_call_key = again.key
            if again.ok and again.parsed is not None:
                answer = again.parsed  # type: ignore[assignment]
                audit = audit_merge(answer, ids, required=list(a.lessons))
            else:
                notes.append(f"the re-ask failed ({again.error}): the first answer is used")
        edit.model = self.name
        self.apply(st, a, answer, audit, edit, notes)

    def _offline(self, st: State, batch: list[int], edit: Edit, why: str) -> None:
        for r in batch:
            st.offline(r, edit)
        edit.fallback = f"edited offline: {why}"

    def apply(
        self, st: State, a: _Ask, answer: MergeAnswer, audit: MergeAudit, edit: Edit, notes: list
    ) -> None:
        node, key = edit.node_id, edit.repair_call_key or edit.llm_call_key
        for said, ids in audit.statements:
            sids = sorted(a.statements[i] for i in ids if i in a.statements)
            rows = [a.lessons[i] for i in ids if i in a.lessons]
            if sids:
                target = sids[0]
                for other in sids[1:]:
                    moved, st.stmts[other].rows = st.stmts[other].rows, []
                    st.stmts[other].merged_into = target
                    for r in moved:
                        self._join(st, target, r, edit)
            else:
                target = st.new(rows[0], edit, section=said.section, title=said.title)
                rows = rows[1:]
            for r in rows:
                self._join(st, target, r, edit)
            self._words(st, target, said, node, key)
            edit.touched.add(target)
        for i in audit.kept:
            if i in a.lessons:
                st.new(a.lessons[i], edit)
        for i, reason in audit.dropped.items():
            if i in a.lessons:
                r = a.lessons[i]
                st.drops[r] = (node, f"model: {reason}")
                edit.outcome_of[r] = f"model: {reason}"
            else:
                st.stmts[a.statements[i]].removed = (node, f"model: {reason}")
        edit.conflicts += [
            {"kind": "model", "ids": c.ids, "resolution": c.resolution,
             "lesson_ids": sorted(st.ids[a.lessons[i]] for i in c.ids if i in a.lessons)}
            for c in answer.conflicts
        ]  # fmt: skip
        notes += audit.notes
        if audit.missing:
            named = {i: c.resolution for c in answer.conflicts for i in c.ids}
            for i in audit.missing:
                r = a.lessons[i]
                if i in named:
                    why = f"omitted by the model after a conflict it resolved: {named[i]}"
                    st.drops[r] = (node, why)
                    edit.outcome_of[r] = why
                else:
                    st.offline(r, edit)
            lost = sum(i in named for i in audit.missing)
            notes.append(
                f"the model left out {', '.join(audit.missing)} after a re-ask: "
                f"{len(audit.missing) - lost} edited offline, {lost} dropped as omitted after a "
                "conflict"
            )
        edit.n_omitted = len(audit.missing)
        edit.fallback = "; ".join(notes) or None

    def _join(self, st: State, sid: int, r: int, edit: Edit) -> None:
        sim = float(np.dot(st.vectors[r], st.vectors[st.stmts[sid].first]))
        st.join(sid, r, "model", sim, edit)

    def _words(self, st: State, sid: int, said, node: str, key: str | None) -> None:
        """The model's words and placement for a statement; its stem follows its new title."""
        s = st.stmts[sid]
        s.title, s.detail = one_line(said.title), (said.detail or "").strip()
        s.section = one_line(said.section) or s.section or st.sections[s.first]
        s.edit = said.edit if said.edit != "append" and said.anchor else None
        s.anchor = said.anchor if s.edit else None
        s.removes = (said.removes or "").strip() or None
        s.writer, s.call_key, s.node = self.name, key, node
        old = st.by_stem.get(s.key, [])
        if sid in old:
            old.remove(sid)
        s.key, s.position = (section_key(s.section), stem(s.title)), position(s.title)
        st.by_stem.setdefault(s.key, []).append(sid)
