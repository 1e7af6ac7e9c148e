"""Patch operations on a skill folder, applied by code (never by a model).

A patch is a list of `PatchOp`s applied in order to a `SkillFolder` in memory. Every op returns
an `OpResult`: ``applied``, ``anchor_missing`` (its section, anchor text or file is not there) or
``rejected`` (unsafe path, section or file already there, ambiguous anchor, unknown op). Nothing is
skipped silently: the caller logs and stores every result.

Ops (``file`` is a path inside the folder; ``section`` a heading title; ``anchor`` exact text):

- add_section: a new ``## section`` (level from ``anchor`` = "level:N", default 2) with ``text``
  as its body, at the end of the file.
- append: ``text`` as a new block at the end of ``section``'s own text, before its first
  subsection (at the end of the file when section is None).
- replace: the one occurrence of ``anchor`` inside ``section`` becomes ``text``.
- insert_after / insert_before: ``text`` lines right after / before the one line of ``section``
  that contains ``anchor``.
- delete_section: the heading and its whole section, and the folder's files that only it linked
  (a reference file nothing else links to would be left orphaned). A level-1 heading (the
  document's title, whose section is the whole document) is not deleted.
- create_file / delete_file: a file (Markdown files become Documents). A file another Markdown
  file still links to is not deleted (``rejected``): the link would dangle.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field

from pipeline.ids import digest
from pipeline.skill.document import Document, Line, norm_title
from pipeline.skill.folder import SKILL_FILE, SkillFolder, SkillPathError, safe_relpath
from pipeline.skill.lint import local_links

OPS = (
    "add_section",
    "append",
    "replace",
    "insert_after",
    "insert_before",
    "delete_section",
    "create_file",
    "delete_file",
)
_WS = re.compile(r"\s+")


@dataclass
class PatchOp:
    op: str
    file: str
    section: str | None = None
    anchor: str | None = None
    text: str | None = None
    cluster_ids: list[str] = field(default_factory=list)
    item: str | None = None  # statement id that every line of `text` is tagged with
    tags: list[str | None] | None = None  # per-line statement ids, overriding `item`
    origin: str = "added"  # origin of the lines it writes (revised for replace)

    @property
    def op_id(self) -> str:
        return digest("patch-op", self.op, self.file, self.section, self.anchor, self.text)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}

    @classmethod
    def from_dict(cls, d: dict) -> PatchOp:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class OpResult:
    status: str  # applied / anchor_missing / rejected
    message: str | None = None


def _lines(op: PatchOp, origin: str | None = None) -> list[Line]:
    texts = (op.text or "").split("\n")
    tags = op.tags if op.tags is not None and len(op.tags) == len(texts) else [op.item] * len(texts)
    out = []
    for t, tag in zip(texts, tags, strict=True):
        kind = origin or (op.origin if tag else "structure")
        out.append(Line(t, kind if t.strip() else "structure", tag if t.strip() else None))
    return out


def _find_line(doc: Document, start: int, end: int, anchor: str) -> tuple[int | None, str | None]:
    want = _WS.sub(" ", anchor).strip()
    hits = [i for i in range(start, end) if want and want in _WS.sub(" ", doc.lines[i].text)]
    if not hits:
        return None, f"anchor {anchor[:60]!r} not found"
    if len(hits) > 1:
        return None, f"anchor {anchor[:60]!r} matches {len(hits)} lines"
    return hits[0], None


def _span(doc: Document, section: str | None) -> tuple[int, int] | None:
    if section is None:
        return 0, len(doc.lines)
    found = doc.find_section(section)
    return None if found is None else (found[0].index, found[1])


def _block(doc: Document, at: int, lines: list[Line]) -> None:
    """Insert `lines` as a block after index `at - 1`, with one blank line around it."""
    before = [Line("", "structure")] if at > 0 and doc.lines[at - 1].text.strip() else []
    after = [Line("", "structure")] if at < len(doc.lines) and doc.lines[at].text.strip() else []
    doc.lines[at:at] = before + lines + after


def link_targets(path: str, lines: list[Line]) -> set[str]:
    """Folder paths that `lines` of the Markdown file `path` link to (outside code fences)."""
    here = posixpath.dirname(path)
    return {posixpath.normpath(posixpath.join(here, t)) for _, t in local_links(lines)}


def _linked(folder: SkillFolder) -> set[str]:
    return {t for p, d in folder.markdown().items() for t in link_targets(p, d.lines)}


def apply_op(folder: SkillFolder, op: PatchOp) -> OpResult:
    if op.op not in OPS:
        return OpResult("rejected", f"unknown op {op.op!r}")
    try:
        path = safe_relpath(op.file)
    except SkillPathError as exc:
        return OpResult("rejected", str(exc))
    target = folder.files.get(path)
    if op.op == "create_file":
        if target is not None:
            return OpResult("rejected", f"{path} already exists")
        if path.endswith(".md"):
            folder.files[path] = Document(_lines(op))
        else:
            folder.files[path] = (op.text or "").encode("utf-8")
        return OpResult("applied")
    if target is None:
        return OpResult("anchor_missing", f"no file {path}")
    if op.op == "delete_file":
        if path == SKILL_FILE:
            return OpResult("rejected", "SKILL.md cannot be deleted")
        linking = sorted(p for p, d in folder.markdown().items()
                         if p != path and path in link_targets(p, d.lines))  # fmt: skip
        if linking:
            return OpResult("rejected", f"{path} is still linked from {', '.join(linking)}")
        del folder.files[path]
        return OpResult("applied")
    if not isinstance(target, Document):
        return OpResult("rejected", f"{path} is not a Markdown file")
    doc = target
    if op.op == "add_section":
        if not op.section:
            return OpResult("rejected", "add_section needs a section title")
        if doc.find_section(op.section) is not None:
            return OpResult("rejected", f"section {op.section!r} already exists in {path}")
        level = 2
        if op.anchor and op.anchor.startswith("level:"):
            level = min(6, max(1, int(op.anchor.split(":", 1)[1] or 2)))
        head = Line(f"{'#' * level} {op.section}", "structure")
        end = doc.last_content(0, len(doc.lines)) + 1
        del doc.lines[end:]
        _block(doc, end, [head, Line("", "structure"), *_lines(op)])
        return OpResult("applied")
    span = _span(doc, op.section)
    if span is None:
        return OpResult("anchor_missing", f"no section {op.section!r} in {path}")
    start, end = span
    if op.op == "append":  # at the end of the section's own text, before any subsection
        own_end = next((h.index for h in doc.headings() if start < h.index < end), end)
        _block(doc, doc.last_content(start, own_end) + 1, _lines(op))
        return OpResult("applied")
    if op.op == "delete_section":
        if doc.lines[start].text.startswith("# "):
            return OpResult("rejected", f"{op.section!r} is the document's title: not deleted")
        own = link_targets(path, doc.lines[start:end])
        del doc.lines[start:end]
        orphans = sorted(f for f in own - _linked(folder) if f in folder.files and f != SKILL_FILE)
        for f in orphans:
            del folder.files[f]
        return OpResult("applied", f"also deleted {', '.join(orphans)}" if orphans else None)
    if not op.anchor:
        return OpResult("rejected", f"{op.op} needs an anchor")
    if op.op in ("insert_after", "insert_before"):
        at, why = _find_line(doc, start, end, op.anchor)
        if at is None:
            return OpResult("rejected" if "matches" in (why or "") else "anchor_missing", why)
        at = at + 1 if op.op == "insert_after" else at
        doc.lines[at:at] = _lines(op)
        return OpResult("applied")
    # replace: the anchor may span lines; it must occur exactly once in the section
    body = "\n".join(ln.text for ln in doc.lines[start:end])
    count = body.count(op.anchor)
    if count != 1:
        status = "anchor_missing" if count == 0 else "rejected"
        return OpResult(status, f"anchor {op.anchor[:60]!r} occurs {count} times in {op.section!r}")
    pos = body.index(op.anchor)
    stop = pos + len(op.anchor)
    first = start + body.count("\n", 0, pos)
    last = start + body.count("\n", 0, stop)
    head = doc.lines[first].text[: pos - (body.rfind("\n", 0, pos) + 1)]
    tail = doc.lines[last].text[stop - (body.rfind("\n", 0, stop) + 1) :]
    new = PatchOp(op.op, op.file, text=head + (op.text or "") + tail, item=op.item)
    doc.lines[first : last + 1] = _lines(new, origin="revised")
    return OpResult("applied")


def apply_patch(folder: SkillFolder, ops: list[PatchOp]) -> list[OpResult]:
    """Apply `ops` in order; one result per op. The folder is changed in place."""
    return [apply_op(folder, op) for op in ops]


def same_heading(a: str, b: str) -> bool:
    return norm_title(a) == norm_title(b)
