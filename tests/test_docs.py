"""The docs site cannot drift from the code: the reference pages are regenerated and compared,
the links resolve, the hand-written lists of tables and formats match the registries, and the
tutorial's tested shell blocks run against the demo data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import docs, schemas
from pipeline.ingest import formats

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
TESTED_BLOCK = re.compile(r"^<!-- test -->\n```bash\n(.*?)^```", re.S | re.M)


def test_the_committed_reference_pages_are_what_the_code_generates():
    for relative, text in docs.pages().items():
        committed = (DOCS / relative).read_text(encoding="utf-8")
        assert committed == text, f"docs/{relative} is stale: run `make docs`"


def test_the_reference_pages_hold_every_command_table_option_and_default():
    cli, tables = docs.cli_page(), docs.tables_page()
    for command in ["distill", "ingest", "analyse", "consolidate", "review", "models check"]:
        assert f"## `trace2skill {command}`" in cli
    assert "| `--min-support INTEGER RANGE` | `2` |" in cli
    assert "| `--lake DIR|URI` |  | Lake root: a folder, or s3://bucket/prefix. (required)" in cli
    for name in schemas.REGISTRY:
        assert f"\n## {name}\n" in tables
    assert (
        "| `trajectory_id` | `String` |  | content hash of source, native id and steps |" in tables
    )
    assert (
        tables.index("## trajectories") < tables.index("## lessons") < tables.index("## eval_runs")
    )


def test_help_text_keeps_examples_as_code_and_rewraps_prose():
    text = "Do a thing.\n\nMore about\nit:\n    trace2skill x --lake lake\n    trace2skill y\n\n\bExit 0."
    assert docs.help_markdown(text) == (
        "Do a thing.\n\nMore about it:\n\n"
        "```\ntrace2skill x --lake lake\ntrace2skill y\n```\n\nExit 0."
    )


def test_the_check_names_a_stale_page_and_writing_fixes_it(tmp_path, capsys):
    assert docs.main(["--docs", str(tmp_path)]) == 0
    page = tmp_path / "reference" / "tables.md"
    page.write_text(page.read_text() + "edited\n")
    assert docs.main(["--docs", str(tmp_path), "--check"]) == 1
    assert "reference/tables.md" in capsys.readouterr().err
    assert docs.main(["--docs", str(tmp_path)]) == 0
    assert docs.main(["--docs", str(tmp_path), "--check"]) == 0


def anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {docs.anchor(h) for h in re.findall(r"^#{1,6} (.+)$", prose, re.M)}


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=lambda p: p.name)
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} is missing"
        if fragment and resolved.suffix == ".md" and resolved.is_relative_to(DOCS):
            assert fragment in anchors(resolved), f"{page.relative_to(ROOT)}: no #{fragment}"


def test_the_site_navigation_names_every_page_once():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def files(nav) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [f for value in nav.values() for f in files(value)]
        return [f for item in nav for f in files(item)]

    assert sorted(files(config["nav"])) == sorted(str(p.relative_to(DOCS)) for p in PAGES)


def table_rows(text: str, header: str) -> list[str]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_lake_page_lists_every_table_of_the_registry():
    rows = table_rows((DOCS / "concepts" / "lake.md").read_text(), "| table | one row per |")
    listed = [re.match(r"\| `(\w+)` \|", row).group(1) for row in rows]
    assert sorted(listed) == sorted(schemas.REGISTRY)


def test_the_readme_formats_table_is_the_docs_one_and_names_every_format():
    header = "| format | what | outcome from |"
    in_readme = table_rows((ROOT / "README.md").read_text(), header)
    in_docs = table_rows((DOCS / "concepts" / "ingest.md").read_text(), header)
    assert in_readme == in_docs, "README.md and docs/concepts/ingest.md list different formats"
    names = [re.match(r"\| `([^`]+)` \|", row).group(1) for row in in_docs]
    assert sorted(names) == sorted(formats.names())


def test_the_readme_keeps_the_test_commands_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    assert "make test " in readme and "make test-core" in readme
    assert len(readme.splitlines()) <= 260


@pytest.mark.slow
def test_the_tutorial_tested_blocks_run_on_the_demo_data(tmp_path):
    blocks = TESTED_BLOCK.findall((DOCS / "tutorial.md").read_text())
    assert len(blocks) >= 5
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The docs say `trace2skill` and `python`: both are this interpreter, with this checkout's
    # `pipeline` first on its path.
    for name, command in [("trace2skill", "-m pipeline.cli"), ("python", "")]:
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {command} "$@"\n')
        shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    for shared in ["data", "sql"]:
        (work / shared).symlink_to(ROOT / shared)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("T2S_", "OPENAI_"))}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "PYTHONPATH": str(ROOT)}
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{block}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    skill = (work / "out" / "airline-agent-policy" / "SKILL.md").read_text()
    assert skill.startswith("---\nname: airline-agent-policy\n")
    lineage = (work / "lineage.csv").read_text().splitlines()
    assert lineage[0].startswith("file,line_no,") and len(lineage) >= 2
    assert (work / "out" / "airline-split" / "SKILL.md").is_file()
