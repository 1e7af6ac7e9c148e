"""Synthetic runs: every format ingests to exactly N runs, deterministic per seed, with the
injected failure patterns visible in the lake."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.ingest.run import EXIT_OK, ingest_paths
from pipeline.ingest.synth import FORMATS, write_synthetic
from pipeline.lake import Lake

N = 40


def digest_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_ingests_to_exactly_n_runs(tmp_path: Path, fmt: str):
    paths = write_synthetic(tmp_path / "raw", N, format=fmt, seed=5)
    labels = next((p for p in paths if p.name in ("report.json", "labels.csv")), None)
    lake = Lake(tmp_path / "lake")
    summary = ingest_paths(lake, [tmp_path / "raw"], labels=labels)
    assert summary.exit_code == EXIT_OK, summary.errors
    assert {f.format for f in summary.files if f.status == "ingested"} == {fmt}
    t = lake.read("trajectories")
    assert t.height == N
    assert set(t["outcome"]) == {"success", "failure"}  # from the source or the labels
    s = lake.read("steps")
    assert s.filter(pl.col("kind") == "tool_result")["is_error"].any()
    assert s.filter(pl.col("kind") == "tool_result")["call_step_idx"].null_count() == 0


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    write_synthetic(tmp_path / "a", 60, format="openai-chat", seed=1)
    write_synthetic(tmp_path / "b", 60, format="openai-chat", seed=1)
    write_synthetic(tmp_path / "c", 60, format="openai-chat", seed=2)
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")
    assert digest_tree(tmp_path / "a") != digest_tree(tmp_path / "c")


def test_injected_patterns_recur_and_are_in_the_grader_view(tmp_path: Path):
    write_synthetic(tmp_path / "raw", 400, format="openai-chat", seed=3)
    lake = Lake(tmp_path / "lake")
    ingest_paths(lake, [tmp_path / "raw"])
    t = lake.read("trajectories")
    injected = [p for m in t["meta"] for p in json.loads(m)["grader"]["injected"]]
    counts = pl.Series(injected).value_counts()
    seen = dict(counts.rows())
    for pattern in ("date_format", "skipped_lookup", "repeated_call", "tests_before_install",
                    "edit_did_not_apply"):  # fmt: skip
        assert seen.get(pattern, 0) >= 10, seen
    s = lake.read("steps").filter(pl.col("is_error"))
    assert s["content"].str.contains("dates must be YYYY-MM-DD").sum() >= 10
    assert s["content"].str.contains("ModuleNotFoundError").sum() >= 10
    # Weaker models fall into the patterns more often.
    rate = t.group_by("model").agg((pl.col("outcome") == "success").mean().alias("r"))
    rates = dict(rate.rows())
    assert rates["claude-3-5-sonnet"] > rates["llama-3.1-70b"]


def test_synth_command(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        main, ["synth", "--out", str(out), "-n", "12", "--format", "claude-code"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 12 claude-code runs" in result.output and "--labels" in result.output
    again = runner.invoke(main, ["synth", "--out", str(out), "-n", "12"])
    assert again.exit_code == 2 and "not empty" in again.output
