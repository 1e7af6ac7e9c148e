"""The behaviour contrasts in the coverage report: the forest plot, the rows of the skill's
sources, the report section, and the whole path from analyse to `coverage --html`."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.analyse.run import analyse
from pipeline.cli import main
from pipeline.consolidate.run import consolidate
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from pipeline.report import svg
from pipeline.report.coverage import coverage
from pipeline.report.html import FINDING, render
from pipeline.report.safe import escape

from . import demo, fixture

SVG = "{http://www.w3.org/2000/svg}"
CHART = "difference in success rate with and without each behaviour"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def _at_row(root: ET.Element, kind: str, css: str, y: float) -> list[ET.Element]:
    attr = "cy" if kind == "circle" else "y1"
    return [
        e
        for e in root.iter(SVG + kind)
        if e.get("class") == css and abs(float(e.get(attr)) - y) < 0.01
    ]


# -- the forest plot ---------------------------------------------------------------------------
EFFECTS = [
    svg.Effect("re-ran the tests", 0.2, 0.1, 0.3, highlight=True),
    svg.Effect("searched the code", -0.1, -0.2, 0.0, other=0.25),
    svg.Effect("ran <tests> & read", None, None, None, other=-0.05),
]


def test_forest_draws_a_row_per_effect_around_zero():
    markup = svg.forest(EFFECTS, label="effects", width=900, label_width=340, value_w=130)
    root = _parse(markup)
    assert root.get("aria-label") == "effects" and root.get("role") == "img"
    # values from -20 to +30 pp: ticks every 10, the plot 430 px wide from x = 340
    (zero,) = [e for e in root.iter(SVG + "line") if e.get("class") == "zero"]
    assert float(zero.get("x1")) == pytest.approx(340 + 430 * 20 / 50)
    ticks = [t.text for t in root.iter(SVG + "text") if t.get("fill") == "#666"]
    assert ticks[:6] == ["-20", "-10", "0", "+10", "+20", "+30"]
    rows = [svg.TOP + i * svg.ROW + svg.ROW / 2 for i in range(3)]

    (interval,) = _at_row(root, "line", "interval", rows[0])
    assert float(interval.get("x1")) == pytest.approx(340 + 430 * 30 / 50)
    assert float(interval.get("x2")) == pytest.approx(340 + 430 * 50 / 50)
    (dot,) = _at_row(root, "circle", "estimate", rows[0])
    assert float(dot.get("cx")) == pytest.approx(340 + 430 * 40 / 50)
    assert dot.get("fill") == "#6a1b9a"  # the highlight colour
    assert not _at_row(root, "circle", "other", rows[0])

    # the estimate that does not decide is a hollow marker beside the one that does
    (other,) = _at_row(root, "circle", "other", rows[1])
    assert float(other.get("cx")) == pytest.approx(340 + 430 * 45 / 50)
    assert other.get("fill") == "#fff"
    (dot,) = _at_row(root, "circle", "estimate", rows[1])
    assert dot.get("fill") == "#5c7cae"
    assert "pooled +25 pp" in dot.find(SVG + "title").text

    # not measured: no dot, no interval, and the label escaped
    assert not _at_row(root, "circle", "estimate", rows[2])
    assert not _at_row(root, "line", "interval", rows[2])
    assert "ran <tests> & read" not in markup and "ran &lt;tests&gt; &amp; read" in markup
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "+20 pp [+10, +30]" in texts and "-10 pp [-20, +0]" in texts
    assert "not measured" in texts


def test_effect_text():
    assert svg.effect_text(0.123, -0.004, 0.25) == "+12 pp [+0, +25]"
    assert svg.effect_text(-0.3, None, None) == "-30 pp"
    assert svg.effect_text(None, None, None) == "not measured"


# -- the rows of the run's sources, and the section --------------------------------------------
def _contrast(source: str, feature: str, **values) -> dict:
    row = {
        "source": source,
        "feature": feature,
        "phrase": f"{feature} in {source}",
        "equivalent": None,
        "n_with": 20,
        "success_with": 15,
        "n_without": 30,
        "success_without": 9,
        "rate_with": 0.75,
        "rate_without": 0.3,
        "diff": 0.45,
        "ci_low": 0.18,
        "ci_high": 0.63,
        "p_value": 0.002,
        "estimate": "pooled",
        "q_value": 0.01,
        "fdr": 0.05,
        "is_finding": True,
    }
    return row | values


CONTRASTS = [
    _contrast("airline", "weak", is_finding=False, q_value=0.4, diff=0.1, ci_low=-0.1),
    _contrast("airline", "untested", is_finding=False, q_value=None, estimate="within_task"),
    _contrast("airline", "tested_after_last_edit", phrase="ran <pytest> after the last edit"),
    _contrast(
        "retail",
        "used:search",
        estimate="within_task",
        n_tasks=6,
        within_diff=0.3,
        within_ci_low=0.05,
        within_ci_high=0.5,
        q_value=0.03,
    ),
    _contrast("airline-new", "held_out_source"),  # runs no consolidation read lessons of
    _contrast("elsewhere", "other_source"),
]


@pytest.fixture(scope="module")
def contrast_lake(tmp_path_factory) -> Lake:
    root = tmp_path_factory.mktemp("report-contrasts")
    lake = Lake(root / "lake")
    fixture.build(lake, root / "out" / "skill")
    lake.write_part("contrasts", fixture.frame("contrasts", CONTRASTS), part="latest")
    return lake


def test_contrasts_of_the_sources_the_run_read(contrast_lake):
    cov = coverage(contrast_lake)  # r1 read lessons of airline and retail runs
    assert cov.contrasts.select("source", "feature").rows() == [
        ("airline", "tested_after_last_edit"),
        ("retail", "used:search"),
        ("airline", "weak"),
        ("airline", "untested"),
    ]
    decided = cov.contrasts.filter(pl.col("feature") == "used:search").row(0, named=True)
    assert (decided["decided_diff"], decided["decided_ci_low"]) == (0.3, 0.05)
    untested = cov.contrasts.filter(pl.col("feature") == "untested").row(0, named=True)
    assert untested["decided_diff"] is None and untested["diff"] == 0.45
    assert cov.summary["contrasts"] == 4 and cov.summary["contrast_findings"] == 2
    assert [r["feature"] for r in cov.to_json()["contrasts"]][:2] == [
        "tested_after_last_edit",
        "used:search",
    ]
    assert cov.tables()["coverage_contrasts"].height == 4
    # r0 read only airline lessons
    assert set(coverage(contrast_lake, run_id="r0").contrasts["source"]) == {"airline"}


def _section(html: str) -> str:
    return html.split("<h2>What successful runs do differently</h2>")[1].split("<h2>")[0]


def test_section_shows_the_chart_and_the_findings(contrast_lake):
    section = _section(render(coverage(contrast_lake)))
    assert re.findall(r'aria-label="([^"]+)"', section) == [CHART]
    assert "Benjamini-Hochberg" in section and "within tasks" in section
    assert "airline, retail" in section  # the sources measured
    # two sources: each label names its source; the phrase is escaped
    assert "ran &lt;pytest&gt; after the last edit · airline" in section
    assert "<pytest>" not in section
    findings = section.split("<h3>findings</h3>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", findings)
    assert len(rows) == 3  # the header and two findings
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[2])
    assert cells == [
        "used:search in retail · retail",
        "20",
        "75%",
        "30",
        "30%",
        "+45 pp [+18, +63]",
        "+30 pp [+5, +50]",
        "0.03",
    ]
    assert "weak in airline" not in findings
    assert section.count(f'fill="{FINDING}"') == 4  # two dots and two value texts


def test_section_without_contrasts_says_so_in_one_line(fixture_lake):
    section = _section(render(coverage(fixture_lake)))
    assert "No behaviour contrasts" in section and "trace2skill analyse" in section
    assert "<svg" not in section and section.count("<p") == 1


# -- from analyse to the report ----------------------------------------------------------------
@pytest.fixture(scope="module")
def analysed_lake(tmp_path_factory) -> tuple[Lake, Path]:
    """The tau-bench airline demo runs ingested, analysed by the offline miner, consolidated."""
    root = tmp_path_factory.mktemp("report-contrasts-e2e")
    lake = Lake(root / "lake")
    summary = ingest_paths(lake, [demo.AIRLINE_RUNS])
    assert summary.exit_code == 0, summary.errors
    analyse(lake, analyst="miner", workers=1)
    consolidate(lake, out_dir=root / "out" / "skill")
    return lake, root


def test_coverage_html_shows_the_contrasts_analyse_wrote(analysed_lake):
    lake, root = analysed_lake
    written = lake.read("contrasts")
    assert written.height > 0 and set(written["source"]) == {"tau-bench-airline"}
    html_path = root / "report.html"
    result = CliRunner().invoke(
        main, ["coverage", "--lake", lake.uri, "--html", str(html_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["summary"]["contrasts"] == written.height
    assert {r["feature"] for r in payload["contrasts"]} == set(written["feature"])
    qs = [r["q_value"] for r in payload["contrasts"] if r["q_value"] is not None]
    assert qs == sorted(qs) and not any(r["is_finding"] for r in payload["contrasts"][len(qs) :])

    section = _section(html_path.read_text())
    assert re.findall(r'aria-label="([^"]+)"', section) == [CHART]
    shown = payload["contrasts"][:25]
    assert section.count('class="estimate"') == sum(r["decided_diff"] is not None for r in shown)
    hollow = sum(r["estimate"] == "within_task" and r["diff"] is not None for r in shown)
    assert section.count('class="other"') == hollow > 0  # tasks repeat: within-task decides
    assert f"<title>{escape(shown[0]['phrase'])}</title>" in section
    n_findings = int(written["is_finding"].sum())
    if n_findings == 0:
        assert "none: no behaviour" in section
    else:
        assert section.split("<h3>findings</h3>")[1].count("<tr>") == n_findings + 1
