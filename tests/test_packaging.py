"""A wheel built from the checkout carries every SQL file, prompt and the WikiTableQuestions
sample, and the code finds them inside the installed package, away from the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, cwd=build, capture_output=True,
    )  # fmt: skip
    (path,) = out.glob("trace2skill-*.whl")
    return path


def test_the_wheel_holds_the_sql_the_prompts_and_the_sample(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in ROOT.glob("sql/**/*.sql"):
        assert f"pipeline/queries/{sql.relative_to(ROOT / 'sql')}" in names, sql
    for prompt in ROOT.glob("pipeline/*/prompts/*.md"):
        assert str(prompt.relative_to(ROOT)) in names, prompt
    sample = ROOT / "data" / "wikitablequestions"
    for f in sample.rglob("*"):
        if f.is_file():
            rel = f.relative_to(sample)
            assert f"pipeline/evaluate/wikitablequestions/sample/{rel}" in names, f


def test_installed_code_reads_its_own_copies(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from pipeline import sql, resources\n"
        "from pipeline.analyse import prompts\n"
        "from pipeline.evaluate.wikitablequestions import data\n"
        "print(sql.SQL_DIR); print(data.SAMPLE_DIR)\n"
        "assert 'select' in sql.load('views_latest')\n"
        "assert (data.SAMPLE_DIR / 'SOURCE.txt').is_file()\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    sql_dir, sample_dir = done.stdout.split()
    assert sql_dir == str(site / "pipeline" / "queries")
    assert sample_dir == str(site / "pipeline" / "evaluate" / "wikitablequestions" / "sample")
