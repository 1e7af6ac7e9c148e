"""The offline path on mini-swe-agent-like runs: a statement that reaches the skill reports the
support it was kept for, and the miner's pool figure in its text agrees with it."""

from __future__ import annotations

import re

import pytest

from pipeline.analyse.run import analyse
from pipeline.consolidate.run import consolidate
from pipeline.lake import Lake
from tests.analyse import builders, domains

MIN_SUPPORT = 2


@pytest.fixture(scope="module")
def skill(tmp_path_factory):
    root = tmp_path_factory.mktemp("miner-support")
    lake = Lake(root / "lake")
    builders.write(lake, domains.shell_runs())
    analyse(lake)
    summary = consolidate(lake, out_dir=root / "swe-skill", min_support=MIN_SUPPORT)
    return summary.out_dir


def entries(folder) -> list[tuple[str, str]]:
    """(statement with its detail, evidence line) of every reference entry."""
    out = []
    for path in sorted((folder / "references").glob("*.md")):
        lines = path.read_text().splitlines()
        out += [
            (line, lines[i + 1])
            for i, line in enumerate(lines)
            if line.startswith("- **") and i + 1 < len(lines)
        ]
    return out


def evidence_runs(evidence: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) (?:failed|successful|other) runs?", evidence))


def test_a_kept_statement_quotes_no_figure_below_its_support(skill):
    found = entries(skill)
    assert found
    for statement, evidence in found:
        runs = evidence_runs(evidence)
        assert runs >= MIN_SUPPORT, (statement, evidence)
        for figure in re.findall(r"Across the pool\b[^()]*? in (\d+) runs?\b", statement):
            assert MIN_SUPPORT <= int(figure), (statement, evidence)


def test_one_error_across_runs_is_one_statement_whose_figure_is_its_support(skill):
    [(statement, evidence)] = [
        e for e in entries(skill) if "ModuleNotFoundError" in e[0].split("**")[1]
    ]
    assert "from bash `python`" in statement or "When bash `python` fails" in statement
    assert "returned this error 8 times in 8 runs" in statement
    assert evidence_runs(evidence) == 8
    assert "When bash `python` fails with" in (skill / "SKILL.md").read_text()
