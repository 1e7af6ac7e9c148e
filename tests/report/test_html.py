"""The HTML report: self-contained, and drawn by a real browser with the network shut."""

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.report.coverage import coverage
from pipeline.report.html import render, write_report

from . import browser, demo, fixture

# Every plot of a report with drift and model calls, in page order.
PLOTS = [
    "failure runs covered by source",
    "failure runs covered by model",
    "failure runs covered by task",
    "failure runs covered by tool",
    "success runs covered by source",
    "success runs covered by task",
    "lessons by fate",
    "runs behind each statement",
    "runs behind each section",
    "similarity of new lessons",
    "cost by stage and model (USD)",
]
# The demo lake was analysed, so its report also shows the behaviour contrasts of its source.
CONTRASTS_PLOT = "difference in success rate with and without each behaviour"
DEMO_PLOTS = [*PLOTS[:9], CONTRASTS_PLOT, *PLOTS[9:]]


@pytest.fixture(scope="module")
def report(fixture_lake, tmp_path_factory) -> Path:
    cov = coverage(fixture_lake, where=fixture.HELD_OUT_WHERE, thin=2)
    out = tmp_path_factory.mktemp("html") / "report.html"
    return write_report(fixture_lake, out, coverage_result=cov)


def test_report_is_self_contained(report):
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert not re.search(r"<script|<link|@import|url\(|@font-face|<iframe|<img", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert re.findall(r'aria-label="([^"]+)"', html) == PLOTS


def test_report_shows_the_figures(report):
    html = report.read_text()
    for figure in (
        "3/6 (50%)",
        "1/2 (50%)",
        "5/9",
        "2/3 (67%)",
        "re-distill",
        "L4b",
        "confidence 0.3 below 0.5",
    ):
        assert figure in html, figure


def test_write_report_from_the_lake_alone(fixture_lake, tmp_path):
    path = write_report(fixture_lake, tmp_path / "sub" / "r.html", run_id="r0")
    html = path.read_text()
    assert "run r0" in html and "Drift</h2>" in html and "Not measured" in html
    assert not list(path.parent.glob(".*.tmp"))


def test_text_is_escaped(fixture_lake):
    cov = coverage(fixture_lake)
    cov.run["out_dir"] = "<script>alert(1)</script>"
    assert "<script>alert" not in render(cov)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = browser.find_chromium()
    if found is None:
        pytest.fail(
            "Chromium is needed to check the report: `make test` installs it (apt-get install chromium)"
        )
    return found


def check_drawn(chromium: str, page: Path, work: Path, plots: list[str]) -> None:
    """Every plot laid out, inked and coloured in Chromium; nothing wider than the window."""
    boxes, height, dom = browser.measure(chromium, page, work)
    assert re.findall(r'aria-label="([^"]+)"', dom) == plots
    assert len(boxes) == len(plots), boxes
    for x, y, w, h in boxes:
        assert w >= 300 and h >= 40, (x, y, w, h)
    width = int(re.search(r'data-page-width="(\d+)"', dom).group(1))
    assert width <= browser.WIDTH, f"the page is {width} px wide: something overflows"
    pixels = browser.screenshot(chromium, page, work, min(height, 12000))
    assert pixels.shape[1] == browser.WIDTH and pixels.shape[0] >= max(
        y + h for _, y, _, h in boxes
    )
    for (x, y, w, h), name in zip(boxes, plots, strict=True):
        region = pixels[y : y + h, x : x + w].astype(int)
        ink = (region.min(axis=2) < 200).mean()
        colour = ((region.max(axis=2) - region.min(axis=2)) > 60).mean()
        assert ink > 0.02, f"{name}: blank where the plot should be ({ink:.3f} ink)"
        assert colour > 0.005, f"{name}: no coloured bars drawn ({colour:.4f})"
    # and the page margin beside the plots is blank: the checks above can fail
    margin = pixels[:height, browser.WIDTH - 20 :].astype(int)
    assert (margin.min(axis=2) > 240).mean() > 0.99


@pytest.mark.browser
def test_report_renders_its_plots_in_chromium(report, chromium, tmp_path):
    check_drawn(chromium, report, tmp_path, PLOTS)


@pytest.mark.browser
def test_demo_report_renders_in_chromium(demo_lake, chromium, tmp_path):
    """The report of the airline skill built on tasks < 35, with drift on the other tasks."""
    cov = coverage(demo_lake.lake, run_id=demo_lake.runs["split"], where=demo.HELD_OUT)
    page = write_report(demo_lake.lake, tmp_path / "demo.html", coverage_result=cov)
    html, s = page.read_text(), cov.summary
    d = s["drift"]
    for figure in (
        f"{s['failures_covered']}/{s['failures']} (",
        f"{d['n_lessons_matched']}/{d['n_lessons']} (",
        f"cost of {s['model_calls']} model calls",
        f"{s['statements_thin']}/{s['statements']}",
    ):
        assert figure in html, figure
    assert "below --min-support 2" in html and "unaccounted" not in html.split("<h2>")[1]
    assert "What successful runs do differently" in html
    check_drawn(chromium, page, tmp_path, DEMO_PLOTS)


def test_png_decoder_reads_every_filter():
    import struct
    import zlib

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    rows = []
    prior = np.zeros(12, dtype=np.int64)
    for y, kind in enumerate([0, 1, 2, 3, 4]):
        line = img[y].reshape(-1).astype(np.int64)
        out = []
        for i, v in enumerate(line):
            a = line[i - 3] if i >= 3 else 0
            b = prior[i]
            c = prior[i - 3] if i >= 3 else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out.append((v - pred) % 256)
        rows.append(bytes([kind, *out]))
        prior = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + b"\0\0\0\0"

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    assert np.array_equal(browser.decode_png(png), img)
