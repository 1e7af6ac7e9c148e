"""The HTML report: one self-contained file (inline CSS and SVG, no script, no font, no fetch).

Reads a ``Coverage`` (computed from the lake when not given); writes ``report.html``. Every
figure of the coverage command is drawn: failed and successful runs covered by source, model,
task and tool; the fate of every lesson; the support of each statement and section against the
thin-evidence threshold; what successful runs of the skill's sources do differently (the
behaviour contrasts); drift on new runs; the cost of model calls.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import polars as pl

from pipeline import __version__
from pipeline.lake import Lake
from pipeline.report import svg
from pipeline.report.coverage import Coverage, coverage, statement_items
from pipeline.report.runs import scope_text
from pipeline.report.safe import escape

STATUS = [
    ("covered", "covered", "#2e7d32"),
    ("dropped", "lessons dropped", "#ef6c00"),
    ("not_in_run", "lessons not read by the run", "#78909c"),
    ("no_lessons", "no lessons found", "#cfd8dc"),
]
FATE_COLOURS = {
    "merged": "#2e7d32",
    "deduplicated": "#66bb6a",
    "dropped": "#ef6c00",
    "unaccounted": "#b00020",
}
THIN, OK = "#ef6c00", "#1565c0"
OTHER_EFFECT, FINDING = "#5c7cae", "#6a1b9a"
TOP_N = 25
TABLE_ROWS = 50  # rows of a table in the report; --out has them all

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1000px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:18px 0 6px}.meta{color:#555;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:1.5em}.card span{color:#555;font-size:.85em}
.warn{background:#fff4e5;border-left:4px solid #ef6c00;padding:8px 12px;margin:8px 0}
.legend span{margin-right:16px;font-size:.85em}.legend i{display:inline-block;width:12px;
height:12px;margin-right:5px;vertical-align:middle}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#fafafa}.empty{color:#777;font-style:italic}svg.plot{display:block;max-width:100%}
td.id{font-family:ui-monospace,monospace;font-size:.85em;white-space:nowrap;color:#555}
td.num{text-align:right;white-space:nowrap}
"""
IDS = {"lesson_id", "trajectory_id", "cluster_id", "run_id"}


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def _cell(column: str, value: object) -> str:
    if column in IDS:
        return f'<td class="id">{escape(_fmt(value))}</td>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{escape(_fmt(value))}</td>'
    return f"<td>{escape(_fmt(value))}</td>"


def _more(n: int) -> str:
    return f'<p class="meta">{n} more rows in the Parquet output (--out).</p>' if n > 0 else ""


def table(frame: pl.DataFrame, columns: list[str], *, limit: int = TABLE_ROWS) -> str:
    """An HTML table of the first `limit` rows, with a note of how many were left out."""
    if frame.height == 0:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        for row in frame.select(columns).head(limit).iter_rows()
    )
    return f"<table><tr>{head}</tr>{body}</table>{_more(frame.height - limit)}"


def _card(value: str, text: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(text)}</span></div>'


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "0/0"


def coverage_plot(cov: Coverage, outcome: str, dimension: str) -> str:
    rows = cov.by.filter((pl.col("outcome") == outcome) & (pl.col("dimension") == dimension))
    if rows.height == 0:
        return '<p class="empty">no runs</p>'
    rows = rows.head(TOP_N)
    data = [
        (
            r["value"],
            [r[f"n_{key}"] for key, _, _ in STATUS],
            _share(r["n_covered"], r["n_trajectories"]),
        )
        for r in rows.iter_rows(named=True)
    ]
    segments = [(name, colour) for _, name, colour in STATUS]
    plot = svg.stacked_bars(data, segments, label=f"{outcome} runs covered by {dimension}")
    more = cov.by.filter((pl.col("outcome") == outcome) & (pl.col("dimension") == dimension)).height
    note = (
        f'<p class="meta">the {TOP_N} {dimension} values with the most runs not covered, of '
        f"{more} (all of them in the Parquet output, --out)</p>"
        if more > TOP_N
        else ""
    )
    return plot + note


def _section_coverage(cov: Coverage) -> str:
    parts = ["<h2>Failed runs the skill covers</h2>"]
    parts.append(
        '<p class="meta">A run is covered when at least one of its lessons reached a statement '
        "of the skill (directly, or through a kept cluster whose consolidated lesson did).</p>"
    )
    parts.append(svg.legend([(name, colour) for _, name, colour in STATUS]))
    for dim in ("source", "model", "task", "tool"):
        parts.append(f"<h3>by {dim}</h3>" + coverage_plot(cov, "failure", dim))
    uncovered = cov.trajectories.filter((pl.col("outcome") == "failure") & ~pl.col("is_covered"))
    parts.append("<h3>failed runs not covered</h3>")
    parts.append(
        table(uncovered, ["trajectory_id", "source", "task_id", "model", "status", "n_lessons"])
    )
    parts.append("<h2>Successful runs whose lessons reached the skill</h2>")
    for dim in ("source", "task"):
        parts.append(f"<h3>by {dim}</h3>" + coverage_plot(cov, "success", dim))
    return "".join(parts)


def _section_fate(cov: Coverage) -> str:
    rows = [
        (
            f"{r['fate']}: {r['stage']}" if r["stage"] else r["fate"],
            float(r["n_lessons"]),
            FATE_COLOURS.get(r["fate"], "#999"),
        )
        for r in cov.fate_summary.iter_rows(named=True)
    ]
    parts = ["<h2>Fate of every lesson</h2>"]
    parts.append(
        '<p class="meta">merged: reached a statement; deduplicated: an exact or near duplicate '
        "of a lesson that did; dropped: fell out at the stage named; unaccounted: did not "
        "reach the skill and no drop row says why.</p>"
    )
    parts.append(
        svg.bars(rows, label="lessons by fate", value_format="{:,.0f}", whole=True)
        if rows
        else '<p class="empty">the run read no lessons</p>'
    )
    gone = cov.fate.filter(pl.col("fate").is_in(["dropped", "unaccounted"]))
    # fate is in lesson_id order: show the first rows without sorting a million fates
    shown = gone.head(TABLE_ROWS).sort("fate", "dropped_stage", "title", "lesson_id")
    parts.append("<h3>why lessons did not reach the skill</h3>")
    parts.append(
        table(cov.drop_reasons, ["fate", "dropped_stage", "dropped_reason", "n_lessons", "n_runs"])
    )
    parts.append("<h3>lessons that did not reach the skill</h3>")
    parts.append(
        table(shown, ["title", "fate", "dropped_stage", "lesson_id", "trajectory_id"])
        + _more(gone.height - shown.height)
    )
    return "".join(parts)


def _statement_label(file: str, line_no: int, text: str) -> str:
    words = text.strip().removeprefix("- ").replace("**", "")
    return f"{file}:{line_no} {words}"


def _section_label(file: str, section: str | None) -> str:
    name = (section or "(top)").removesuffix(": lessons from runs")
    return f"{name} · {file}"


def _section_evidence(cov: Coverage) -> str:
    thin = cov.settings["thin"]
    items = statement_items(cov.statements)
    parts = ["<h2>Evidence behind each statement</h2>"]
    parts.append(
        f'<p class="meta">Distinct runs behind each statement of the skill (a statement\'s '
        f"bullet in SKILL.md and its entry in references/ count once); fewer than {thin} "
        "(dashed line) is thin evidence.</p>"
    )
    if items.height:
        shown = items.head(TOP_N * 2)
        rows = [
            (
                _statement_label(r["file"], r["line_no"], r["text"]),
                float(r["n_trajectories"]),
                THIN if r["is_thin"] else OK,
            )
            for r in shown.iter_rows(named=True)
        ]
        parts.append(
            svg.bars(
                rows,
                label="runs behind each statement",
                threshold=thin,
                threshold_text=f"thin below {thin}",
                value_format="{:,.0f}",
                whole=True,
                label_width=440,
            )
        )
        if items.height > shown.height:
            parts.append(
                f'<p class="meta">the {shown.height} statements with the fewest runs behind '
                f"them, of {items.height}</p>"
            )
    else:
        parts.append('<p class="empty">no statement of this run rests on lessons</p>')
    sections = cov.sections.filter(pl.col("n_lesson_statements") > 0)
    parts.append("<h3>sections</h3>")
    if sections.height:
        rows = [
            (
                _section_label(r["file"], r["section"]),
                float(r["n_trajectories"]),
                THIN if r["is_thin"] else OK,
            )
            for r in sections.iter_rows(named=True)
        ]
        parts.append(
            svg.bars(
                rows,
                label="runs behind each section",
                threshold=thin,
                threshold_text=f"thin below {thin}",
                value_format="{:,.0f}",
                whole=True,
                label_width=360,
            )
        )
        parts.append(
            table(
                sections,
                ["file", "section", "n_lesson_statements", "n_trajectories", "n_tasks", "is_thin"],
            )
        )
    return "".join(parts)


def _rate(successes: int, runs: int) -> str:
    return f"{successes / runs:.0%}" if runs else ""


def _effect_label(row: dict, several_sources: bool) -> str:
    return f"{row['phrase']} · {row['source']}" if several_sources else row["phrase"]


def _section_behaviour(cov: Coverage) -> str:
    title = "<h2>What successful runs do differently</h2>"
    contrasts = cov.contrasts
    if contrasts.height == 0:
        return (
            title + '<p class="empty">No behaviour contrasts for the sources of this skill: run '
            "<code>trace2skill analyse</code> on this lake to measure them.</p>"
        )
    fdr = float(contrasts["fdr"].max())
    several = contrasts["source"].n_unique() > 1
    parts = [title]
    parts.append(
        '<p class="meta">For each behaviour analyse measured in the runs of the skill\'s sources '
        f"({escape(', '.join(sorted(contrasts['source'].unique())))}): the success rate of the "
        "runs with it against the runs without it, and the difference with its 95% interval. "
        "Where most runs of a source share their task with other runs, the difference is "
        "measured within tasks (Mantel-Haenszel), so that a behaviour common on easy tasks does "
        "not pass for one that helps; the hollow circle is then the pooled difference, and a gap "
        "between the two is the tasks' doing (confounding); 'not measured': too few tasks have "
        "runs both with and without the behaviour to tell it from the tasks. p-values are "
        "adjusted over a source's behaviours (Benjamini-Hochberg); a finding "
        f'(<b style="color:{FINDING}">in colour</b>) has q at most {fdr:g} (the false-discovery '
        "rate) and an interval that excludes 0.</p>"
    )
    shown = contrasts.head(TOP_N)
    effects = [
        svg.Effect(
            label=_effect_label(r, several),
            value=r["decided_diff"],
            low=r["decided_ci_low"],
            high=r["decided_ci_high"],
            other=r["diff"] if r["estimate"] == "within_task" else None,
            highlight=r["is_finding"],
        )
        for r in shown.iter_rows(named=True)
    ]
    parts.append(
        svg.forest(
            effects,
            label="difference in success rate with and without each behaviour",
            colours=(OTHER_EFFECT, FINDING),
        )
    )
    if contrasts.height > shown.height:
        n_shown_findings = int(shown["is_finding"].sum())
        parts.append(
            f'<p class="meta">the findings first, then the {shown.height - n_shown_findings} '
            f"other behaviours with the lowest q, of {contrasts.height} (all of them in the "
            "Parquet output, --out)</p>"
        )
    findings = contrasts.filter(pl.col("is_finding"))
    parts.append("<h3>findings</h3>")
    if findings.height == 0:
        parts.append(
            f'<p class="empty">none: no behaviour\'s difference passed at a false-discovery '
            f"rate of {fdr:g}</p>"
        )
        return "".join(parts)
    rows = pl.DataFrame(
        [
            {
                "behaviour": _effect_label(r, several),
                "runs with": r["n_with"],
                "success with": _rate(r["success_with"], r["n_with"]),
                "runs without": r["n_without"],
                "success without": _rate(r["success_without"], r["n_without"]),
                "difference [95%]": svg.effect_text(r["diff"], r["ci_low"], r["ci_high"]),
                "within tasks [95%]": svg.effect_text(
                    r["within_diff"], r["within_ci_low"], r["within_ci_high"]
                ),
                "q": r["q_value"],
            }
            for r in findings.iter_rows(named=True)
        ]
    )
    parts.append(table(rows, rows.columns))
    return "".join(parts)


def _section_drift(cov: Coverage) -> str:
    if cov.drift is None:
        return (
            '<h2>Drift</h2><p class="meta">Not measured: run coverage with --against NEW_LAKE '
            "or --where CONDITION to compare runs the skill was not built from.</p>"
        )
    d, s = cov.drift, cov.drift.summary
    parts = ["<h2>Drift</h2>"]
    parts.append(
        f'<p class="meta">{s["n_trajectories"]} runs the skill was not built from '
        f"({escape(d.origin)})</p>"
    )
    parts.append('<div class="cards">')
    parts.append(
        _card(_share(s["n_lessons_matched"], s["n_lessons"]), "new lessons already in the skill")
    )
    parts.append(
        _card(
            _share(s["n_failures_matched"], s["n_failures"]), "new failed runs with a known lesson"
        )
    )
    parts.append("</div>")
    parts.append(
        f'<p class="warn">{escape(s["verdict"])}</p>'
        if s["redistill"]
        else f"<p>{escape(s['verdict'])}</p>"
    )
    parts.append(
        '<p class="meta">Best cosine similarity of each new lesson\'s title to the titles of the '
        "lessons the skill stands on, within the same target section and polarity (as "
        f"consolidation compares lessons; {escape(d.embedder)} embedder); at or above "
        f"{d.threshold} (dashed line) it counts as already in the skill.</p>"
    )
    parts.append(
        svg.histogram(
            d.lessons["similarity"].to_list(),
            label="similarity of new lessons",
            threshold=d.threshold,
        )
    )
    parts.append("<h3>new lessons not in the skill</h3>")
    parts.append(
        table(
            d.lessons.filter(~pl.col("is_matched")).sort(
                "similarity", "lesson_id", descending=[True, False]
            ),
            ["title", "matched_title", "similarity", "task_id", "lesson_id"],
        )
    )
    return "".join(parts)


def _section_cost(cov: Coverage) -> str:
    parts = ["<h2>Model calls</h2>"]
    if cov.costs.height == 0:
        return parts[0] + '<p class="empty">no model calls recorded (offline run)</p>'
    rows = [
        (f"{r['stage']} / {r['model']}", float(r["cost_usd"]), "#6a1b9a")
        for r in cov.costs.iter_rows(named=True)
    ]
    parts.append(svg.bars(rows, label="cost by stage and model (USD)", value_format="${:,.4f}"))
    parts.append(table(cov.costs, cov.costs.columns))
    return "".join(parts)


def render(cov: Coverage, *, lake_uri: str = "") -> str:
    """The whole report as one HTML string."""
    s, run = cov.summary, cov.run
    cards = [
        _card(_share(s["failures_covered"], s["failures"]), "failed runs covered"),
        _card(
            _share(s["successes_covered"], s["successes"]),
            "successful runs whose lessons reached it",
        ),
        _card(
            f"{s['lessons_merged'] + s['lessons_deduplicated']}/{s['lessons_read']}",
            "lessons in the skill",
        ),
        _card(str(s["lessons_dropped"]), "lessons dropped"),
        _card(f"{s['statements_thin']}/{s['statements']}", "statements on thin evidence"),
        _card(
            f"${s['cost_usd']:,.4f}" if s["model_calls"] else "none",
            f"cost of {s['model_calls']:,} model calls" if s["model_calls"] else "model calls",
        ),
    ]
    if s["lessons_unaccounted"]:
        cards.append(_card(str(s["lessons_unaccounted"]), "lessons unaccounted for"))
    if s["drift"] is not None:
        d = s["drift"]
        cards.append(
            _card(
                _share(d["n_lessons_matched"], d["n_lessons"]),
                "new runs' lessons already in the skill",
            )
        )
    warnings = "".join(f'<p class="warn">{escape(w)}</p>' for w in cov.warnings)
    created = run.get("created_at")
    meta = (
        f"run {escape(run['run_id'])} · {escape(str(run.get('mode')))} · model "
        f"{escape(str(run.get('model')))} · {escape(str(created)[:19])} · skill "
        f"{escape(str(run.get('out_dir')))}<br>{escape(scope_text(cov.settings['scope']))}"
    )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Skill coverage: {escape(run['run_id'])}</title><style>{CSS}</style></head><body>"
        f'<h1>Skill coverage</h1><p class="meta">{meta}</p>'
        f'<div class="cards">{"".join(cards)}</div>{warnings}'
        + _section_coverage(cov)
        + _section_fate(cov)
        + _section_evidence(cov)
        + _section_behaviour(cov)
        + _section_drift(cov)
        + _section_cost(cov)
        + f'<p class="meta">trace2skill {__version__} · lake {escape(lake_uri)} · {now}</p>'
        "</body></html>"
    )


def write_report(
    lake: Lake,
    out_path: str | os.PathLike,
    *,
    run_id: str | None = None,
    coverage_result: Coverage | None = None,
) -> Path:
    """Write the report of one consolidation run (the newest by default); returns its path."""
    cov = coverage_result if coverage_result is not None else coverage(lake, run_id=run_id)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(render(cov, lake_uri=lake.uri), encoding="utf-8")
    os.replace(tmp, out)
    return out.resolve()
