"""Statements -> patch ops: where each consolidated lesson goes in the skill, and its evidence.

SKILL.md stays concise: each section that gained lessons gets one lead-in line linking its
reference file, then one bullet per lesson, best supported first, within a per-section cap and a
line budget (Agent Skills keep SKILL.md under 500 lines). A lesson that revises a base statement
(op revise/remove) goes as a sub-bullet right under the base line it is most similar to, when one
is similar enough. Every lesson, in SKILL.md or not, gets an entry in `references/<section>.md`
with its detail and a compact evidence note ("seen in 14 failed runs across 6 tasks").
Sections the base skill lacks are added at the end of SKILL.md.

A model merger may place a statement itself: `edit` insert_after / insert_before / replace at an
exact `anchor` of the base section (kept as the model gave it: an anchor the skill lacks ends as
`anchor_missing` when applied, reported, never re-placed), and `removes` a base section or file
the statement supersedes (its delete op comes first; a removed section that still gets lessons is
added again at the end).

Each op's lines are tagged with the statement id, so provenance can be read off the written files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipeline.analyse.redact import redact
from pipeline.consolidate.conflicts import Item, section_key
from pipeline.consolidate.settings import Thresholds
from pipeline.llm.embed import Embedder
from pipeline.skill.document import slug
from pipeline.skill.folder import SKILL_FILE, SkillFolder
from pipeline.skill.lint import REVIEW_MARKER, instruction_like
from pipeline.skill.patch import PatchOp

GENERAL = "General"
PLACED = ("insert_after", "insert_before", "replace")  # edits a model places at an anchor
_WS = re.compile(r"\s+")
# a '[' that a '](', ']:' or '][' follows: a link, an image or a link definition
_LINKISH = re.compile(r"(?<!\\)\[(?=[^\n]*\]\s*[(:\[])")
_TAGLIKE = re.compile(r"(?<!\\)<(?=[A-Za-z/!?])")  # a '<' opening an HTML tag, comment or autolink
_SPACE_PUNCT = re.compile(r"\s+([.,;:!?])(?=\s|$)")


@dataclass
class RunIndex:
    """Trajectories by dense index: outcome and task, for evidence notes."""

    ids: list[str]
    failed: np.ndarray
    succeeded: np.ndarray
    task: np.ndarray  # task index, -1 when unknown

    @classmethod
    def from_facts(cls, facts: pl.DataFrame) -> RunIndex:
        runs = facts.select("trajectory_id", "outcome", "task_id").unique("trajectory_id")
        runs = runs.sort("trajectory_id")
        task = runs["task_id"].cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1)
        return cls(
            ids=runs["trajectory_id"].to_list(),
            failed=(runs["outcome"] == "failure").fill_null(False).to_numpy(),
            succeeded=(runs["outcome"] == "success").fill_null(False).to_numpy(),
            task=task.to_numpy(),
        )

    def index(self) -> pl.DataFrame:
        return pl.DataFrame({"trajectory_id": self.ids}).with_row_index("run_idx")


def evidence_note(item: Item, runs: RunIndex) -> str:
    r = item.runs
    failed, passed = int(runs.failed[r].sum()), int(runs.succeeded[r].sum())
    other = r.size - failed - passed
    tasks = np.unique(runs.task[r]).tolist()
    n_tasks = len([t for t in tasks if t >= 0])
    parts = [
        f"{n} {label} run{'s' if n != 1 else ''}"
        for n, label in ((failed, "failed"), (passed, "successful"), (other, "other"))
        if n
    ]
    seen = " and ".join(parts) if len(parts) < 3 else f"{parts[0]}, {parts[1]} and {parts[2]}"
    across = f" across {n_tasks} task{'s' if n_tasks != 1 else ''}" if n_tasks else ""
    return f"seen in {seen}{across} ({item.n_lessons} lesson{'s' if item.n_lessons != 1 else ''})"


def one_line(text: str) -> str:
    """One inert line of Markdown from lesson text, which quotes runs: secrets redacted, spacing
    collapsed (no heading, list, fence or block can start inside it), no space before
    punctuation, '<' escaped where it would open an HTML tag or comment, and '[' where it would
    open a link, an image or a link definition. So text from a run never becomes markup, a
    hidden comment, or a link (that could dangle or point out of the folder)."""
    flat = _SPACE_PUNCT.sub(r"\1", _WS.sub(" ", redact(text or "") or "")).strip()
    return _LINKISH.sub(r"\\[", _TAGLIKE.sub(r"\\<", flat))


def statement(text: str) -> str:
    """`one_line(text)` for a statement written into the skill; one that reads like an
    instruction addressed to the agent (the wording of a prompt injection) is quoted after a
    review marker, so the agent reads it as a quote from a run, and lint lists it for review."""
    line = one_line(text)
    if instruction_like(line) and not line.startswith(REVIEW_MARKER):
        return f'{REVIEW_MARKER} "{line}"'
    return line


def detail_of(item: Item) -> str:
    """The content without a repeat of the title at its start."""
    d, t = one_line(item.detail), one_line(item.title).rstrip(". ")
    if d.lower().startswith(t.lower()):
        d = d[len(t) :].lstrip(" .:;-")
    return statement(d) if d else d


@dataclass
class Layout:
    """What rendering needs from the starting skill, computed once."""

    base: SkillFolder
    t: Thresholds
    runs: RunIndex
    embedder: Embedder
    headings: dict[str, str] = field(default_factory=dict)  # section key -> base heading
    anchors: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    ref_paths: dict[str, str] = field(default_factory=dict)
    base_lines: int = 0
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, base: SkillFolder, t: Thresholds, runs: RunIndex, embedder: Embedder) -> Layout:
        doc = base.skill
        lay = cls(base, t, runs, embedder, base_lines=doc.render().count("\n"))
        sec = doc.section_of()
        heads = {h.index for h in doc.headings()}
        for h in doc.headings():
            lay.headings.setdefault(section_key(h.title), h.title)
        lines: dict[str, list[str]] = {}
        for i, ln in enumerate(doc.lines):
            if i not in heads and ln.text.strip() and sec[i] is not None:
                lines.setdefault(section_key(sec[i]), []).append(ln.text)
        for key, texts in lines.items():
            lay.anchors[key] = (texts, embedder.embed([one_line(t) for t in texts]))
        return lay

    def heading(self, section: str | None) -> str:
        name = statement(section or "") or GENERAL
        return self.headings.get(section_key(name), name)

    def ref_path(self, heading: str) -> str:
        key = section_key(heading)
        if key not in self.ref_paths:
            taken = set(self.base.files) | set(self.ref_paths.values())
            stem, n = f"references/{slug(heading)}", 1
            path = f"{stem}.md"
            while path in taken:
                n += 1
                path = f"{stem}-{n}.md"
            self.ref_paths[key] = path
        return self.ref_paths[key]

    def anchor(self, heading: str, title: str) -> str | None:
        """The base line of `heading` most similar to `title`, if similar enough."""
        found = self.anchors.get(section_key(heading))
        if not found:
            return None
        texts, vecs = found
        if title not in self._vectors:
            self._vectors[title] = self.embedder.embed([title])[0]
        sims = vecs @ self._vectors[title]
        best = int(np.argmax(sims))
        return texts[best] if sims[best] >= self.t.anchor_threshold else None


def _lead_in(path: str) -> str:
    return f"Learned from runs (each with its evidence in [{path}]({path})):"


def reference_text(heading: str, items: list[Item], runs: RunIndex) -> tuple[str, list]:
    lines = [
        f"# {heading}: lessons from runs",
        "",
        "Each lesson below recurred in separate runs; the line under it gives the evidence.",
    ]
    tags: list[str | None] = [None, None, None]
    for it in items:
        detail = detail_of(it)
        lines += [
            "",
            f"- **{statement(it.title)}**" + (f" {detail}" if detail else ""),
            f"  - Evidence: {evidence_note(it, runs)}.",
        ]
        tags += [None, it.item_id, it.item_id]
    return "\n".join(lines), tags


def render_patch(items: list[Item], lay: Layout) -> list[PatchOp]:
    """The ops that write `items` into the starting skill (see the module docstring)."""
    by_section: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda i: (-i.support, i.title, i.item_id)):
        by_section.setdefault(lay.heading(it.section), []).append(it)
    removed = {section_key(it.removes) for it in items if it.removes and not _is_file(it, lay)}
    present = {k for k in lay.headings if k not in removed}
    base_order = {k: n for n, k in enumerate(lay.headings)}
    sections = sorted(
        by_section,
        key=lambda h: (
            base_order.get(section_key(h), len(base_order)),
            -sum(i.support for i in by_section[h]),
            h,
        ),
    )
    budget = lay.t.max_skill_lines - lay.base_lines - 6  # room for the frontmatter's metadata
    shown: dict[str, list[Item]] = {h: [] for h in sections}
    for h in sections:
        budget -= 2 if section_key(h) in present else 4
    ranked = sorted(items, key=lambda i: (-i.support, i.title, i.item_id))
    for it in ranked:
        h = lay.heading(it.section)
        if len(shown[h]) < lay.t.max_section_items and budget >= 2:
            shown[h].append(it)
            budget -= 2

    ops: list[PatchOp] = [_removal(it, lay) for it in ranked if it.removes]
    for h in sections:
        path = lay.ref_path(h)
        kind = "append" if section_key(h) in present else "add_section"
        ops.append(PatchOp(kind, SKILL_FILE, section=h, text=_lead_in(path), origin="structure"))
        under: dict[str, list[Item]] = {}
        for it in shown[h]:
            if it.edit in PLACED and it.anchor:
                ops.append(_placed(it, h, lay))
                continue
            anchor = lay.anchor(h, it.title) if it.op in ("revise", "remove") else None
            if anchor is None or kind == "add_section":
                ops.append(_op("append", h, None, f"- {statement(it.title)}", it))
            else:
                under.setdefault(anchor, []).append(it)
        for anchor, its in under.items():
            indent = " " * (len(anchor) - len(anchor.lstrip()) + 2)
            for it in reversed(its):  # each lands right under the anchor: reverse keeps rank order
                ops.append(
                    _op("insert_after", h, anchor.strip(), f"{indent}- {statement(it.title)}", it)
                )
    for h in sections:
        text, tags = reference_text(h, by_section[h], lay.runs)
        ids = sorted({c for it in by_section[h] for c in it.cluster_ids})
        ops.append(PatchOp("create_file", lay.ref_path(h), text=text, tags=tags, cluster_ids=ids))
    return ops


def _op(kind: str, section: str, anchor: str | None, text: str, it: Item) -> PatchOp:
    return PatchOp(
        kind,
        SKILL_FILE,
        section=section,
        anchor=anchor,
        text=text,
        cluster_ids=list(it.cluster_ids),
        item=it.item_id,
    )


def _is_file(it: Item, lay: Layout) -> bool:
    return (it.removes or "") in lay.base.files


def _removal(it: Item, lay: Layout) -> PatchOp:
    if _is_file(it, lay):
        return PatchOp("delete_file", it.removes, cluster_ids=list(it.cluster_ids), item=it.item_id)
    return PatchOp(
        "delete_section",
        SKILL_FILE,
        section=it.removes,
        cluster_ids=list(it.cluster_ids),
        item=it.item_id,
    )


def _placed(it: Item, heading: str, lay: Layout) -> PatchOp:
    """A statement at the model's anchor: a replacement of the anchor text, a sibling bullet
    before its line, or a sub-bullet under it."""
    anchor = it.anchor or ""
    title = statement(it.title)
    if it.edit == "replace":
        text = f"- {title}" if anchor.lstrip().startswith("- ") else title
        return _op("replace", heading, anchor, text, it)
    want = _WS.sub(" ", anchor).strip()
    texts = lay.anchors.get(section_key(heading), ([], None))[0]
    line = next((t for t in texts if want and want in _WS.sub(" ", t)), "")
    indent = len(line) - len(line.lstrip()) + (2 if it.edit == "insert_after" else 0)
    return _op(it.edit, heading, anchor, f"{' ' * indent}- {title}", it)
