"""The stage contract holds: every table has a stage that writes it, and each stage, run on the
demo data, writes only the tables it declares."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline import audits, schemas
from pipeline.analyse.run import analyse
from pipeline.cli import main
from pipeline.console import Console
from pipeline.consolidate.run import consolidate
from pipeline.ingest.run import ingest_paths
from pipeline.lake import Lake
from pipeline.skill.proposals import find
from pipeline.skill.review import review
from pipeline.stages import BY_NAME, STAGES, writers
from tests.conftest import DATA
from tests.evaluate.agents import answer

AIRLINE = DATA / "tau-bench-airline"


def test_every_table_has_a_writer_and_every_declared_table_exists():
    declared = {t for s in STAGES for t in (*s.reads, *s.all_writes)}
    assert declared <= set(schemas.REGISTRY), declared - set(schemas.REGISTRY)
    assert [t for t in schemas.REGISTRY if not writers(t)] == []
    assert writers("llm_calls") == ["analyse", "consolidate", "rollout", "eval"]


def snapshot(lake: Lake) -> dict[str, list[str]]:
    return {name: lake.parts(name) for name in schemas.REGISTRY}


def written(before: dict, after: dict) -> set[str]:
    return {name for name in after if after[name] != before[name]}


def check(lake: Lake, stages: tuple[str, ...], run) -> set[str]:
    before = snapshot(lake)
    run()
    touched = written(before, snapshot(lake))
    allowed = {t for s in stages for t in BY_NAME[s].all_writes}
    assert touched <= allowed, f"{stages} wrote {sorted(touched - allowed)} undeclared"
    assert [(f.audit, f.rows.head(3).to_dicts()) for f in audits.run(lake, touched)] == []
    return touched


@pytest.fixture
def server(loopback, monkeypatch):
    loopback.responder = answer
    monkeypatch.setenv("OPENAI_API_KEY", "loopback-key")
    return loopback


def test_each_stage_writes_only_what_it_declares(tmp_path, server):
    records = json.loads((AIRLINE / "gpt-4o-airline.json").read_text())
    batches = []
    for i, part in enumerate((records[:40], records[40:80])):
        batches.append(tmp_path / f"b{i}.json")
        batches[-1].write_text(json.dumps(part))
    lake, console = Lake(tmp_path / "lake"), Console(0)
    out, base = tmp_path / "out" / "airline-agent-policy", AIRLINE / "base-skill"
    touched = check(lake, ("ingest",), lambda: ingest_paths(lake, [batches[0]], console=console))
    assert {"trajectories", "steps", "ingest_files"} <= touched
    touched = check(lake, ("analyse",), lambda: analyse(lake, base_skill=base, console=console))
    assert {"lessons", "analyses", "actions"} <= touched
    touched = check(
        lake,
        ("consolidate", "export"),
        lambda: consolidate(lake, base_skill=base, out_dir=out, console=console),
    )
    assert {"consolidations", "skill_lines", "skill_versions"} <= touched
    ingest_paths(lake, [batches[1]], console=console)
    analyse(lake, base_skill=base, console=console)
    touched = check(
        lake,
        ("consolidate", "export"),
        lambda: consolidate(lake, base_skill=base, out_dir=out, console=console, propose=True),
    )
    assert {"proposals", "proposal_edits"} <= touched
    proposal = find(lake, lake.read("proposals")["proposal_id"][0])
    touched = check(
        lake, ("review",), lambda: review(lake, proposal, accept_all=True, console=console)
    )
    assert {"decisions", "skill_versions"} <= touched
    settings = tmp_path / "models.toml"
    settings.write_text("[model]\nmax_retries = 0\ntimeout_s = 5.0\n")
    args = ["--split", "train", "--limit", "3", "--model", "m", "--base-url", server.url,
            "--settings", str(settings), "--lake", str(lake.uri)]  # fmt: skip
    touched = check(
        lake,
        ("rollout",),
        lambda: CliRunner().invoke(main, ["rollout", *args], catch_exceptions=False),
    )
    assert {"eval_results", "llm_calls"} <= touched
