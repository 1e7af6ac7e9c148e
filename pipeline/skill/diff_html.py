"""The diff of two skill versions as one standalone HTML page (inline CSS, no script, no fetch).

Reads a `StatementDiff` and the two versions' rows (`skill_versions`); returns the page, which
the `diff` command writes with `--html`. Sections in order; an added statement in green, a
removed one in red, a changed one with its old and new text; the evidence beside each. Every text
goes through `pipeline.report.safe.escape` (secrets redacted, markup inert), as in the report.
"""

from __future__ import annotations

import datetime as dt

from pipeline import __version__
from pipeline.report.html import CSS
from pipeline.report.safe import escape
from pipeline.skill.diff import StatementDiff, evidence_text

DIFF_CSS = """
.stmt{display:flex;gap:16px;padding:6px 10px;margin:4px 0;border-radius:4px}
.stmt .text{flex:1;white-space:pre-wrap}.stmt .ev{color:#555;font-size:.85em;min-width:220px}
.added{background:#e8f5e9;border-left:4px solid #2e7d32}
.removed{background:#ffebee;border-left:4px solid #b00020}
.changed{background:#fff8e1;border-left:4px solid #ef6c00}
.old{color:#b00020;text-decoration:line-through}.new{color:#2e7d32}
.kind{font-weight:bold;width:70px}pre.files{background:#fafafa;padding:8px;overflow-x:auto;
font-size:.8em}
"""


def _version_meta(label: str, v: dict) -> str:
    created = str(v.get("created_at") or "")[:19]
    return (
        f"<b>{escape(label)}</b> {escape(v['version_id'])} · run {escape(str(v.get('run_id')))}"
        f" · {escape(created)} · {escape(str(v.get('created_by') or 'found at the folder'))}"
        f" · {escape(str(v.get('n_statements')))} statements"
    )


def _entry(kind: str, e: dict) -> str:
    if kind == "changed":
        old, new = e["old"], e["new"]
        text = (
            f'<div class="old">{escape(old["text"])}</div>'
            f'<div class="new">{escape(new["text"])}</div>'
        )
        ev = (
            f"was: {escape(evidence_text(old))}<br>now: {escape(evidence_text(new))}"
            f"<br>same statement by its {escape(e['matched_by'])}"
        )
        if (old["file"], old["section"]) != (new["file"], new["section"]):
            ev += f"<br>moved from {escape(old['file'])} · {escape(old['section'] or '(top)')}"
    else:
        text, ev = escape(e["text"]), escape(evidence_text(e))
    where = escape(f"{(e['new'] if kind == 'changed' else e)['file']}")
    return (
        f'<div class="stmt {kind}"><span class="kind">{escape(kind)}</span>'
        f'<div class="text">{text}</div><div class="ev">{ev}<br>{where}</div></div>'
    )


def render(d: StatementDiff, a: dict, b: dict, *, files: str | None = None, lake_uri="") -> str:
    counts = d.counts()
    cards = "".join(
        f'<div class="card"><b>{n}</b><span>{escape(kind)}</span></div>'
        for kind, n in counts.items()
    )
    body = []
    for section, entries in d.by_section().items():
        body.append(f"<h2>{escape(section)}</h2>")
        body.extend(_entry(kind, e) for kind, e in entries)
    if not body:
        body.append('<p class="empty">no statement was added, changed or removed</p>')
    if files is not None:
        body.append("<h2>Files</h2>")
        body.append(
            f'<pre class="files">{escape(files)}</pre>' if files else '<p class="empty">same</p>'
        )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Skill diff: {a['version_id'][:12]} → {b['version_id'][:12]}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{DIFF_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="meta">{_version_meta("from", a)}<br>{_version_meta("to", b)}</p>'
        f'<div class="cards">{cards}</div>'
        + "".join(body)
        + f'<p class="meta">trace2skill {escape(__version__)} · lake {escape(lake_uri)} · {now}</p>'
        "</body></html>"
    )
