"""Every command on a lake in S3 (a moto server on loopback) agrees with the same command on a
local lake: ingest, analyse, sql and coverage, through the CLI as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.lake import Lake
from tests.conftest import DATA
from tests.report import fixture

DEMO = [
    DATA / "tau-bench-airline" / "gpt-4o-airline.json",
    DATA / "reflexion-hotpotqa" / "100_questions_5_trials.txt",
]
SKILL = DATA / "tau-bench-airline" / "base-skill"
# Columns that record when a row was written, not what it holds.
WHEN = ("ingested_at", "created_at", "started_at", "finished_at")


def cli(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def table(lake: Lake, name: str, key: list[str]) -> pl.DataFrame:
    frame = lake.read(name)
    return frame.drop([c for c in WHEN if c in frame.columns]).sort(key)


@pytest.fixture(scope="module")
def lakes(s3, tmp_path_factory) -> tuple[Lake, Lake]:
    """The demo subset ingested and analysed into a local lake and an S3 lake, by the CLI."""
    local = Lake(tmp_path_factory.mktemp("local") / "lake")
    remote = s3.lake("demo")
    for lake in (local, remote):
        r = cli("ingest", "--lake", lake.uri, *DEMO)
        assert r.exit_code == 0, r.output
        r = cli("analyse", "--lake", lake.uri, "--base-skill", SKILL)
        assert r.exit_code == 0, r.output
    return local, remote


@pytest.mark.parametrize(
    "name, key",
    [
        ("trajectories", ["trajectory_id"]),
        ("steps", ["trajectory_id", "step_idx"]),
        ("ingest_files", ["file_key"]),
        ("lessons", ["lesson_id"]),
        ("analyses", ["analysis_id"]),
    ],
)
def test_the_s3_lake_holds_what_the_local_lake_holds(lakes, name, key):
    local, remote = lakes
    want = table(local, name, key)
    assert want.height > 0
    assert table(remote, name, key).equals(want)


def test_parts_are_named_alike(lakes):
    local, remote = lakes
    for name in ("trajectories", "steps", "lessons", "analyses"):
        base = len(local.table_dir(name)), len(remote.table_dir(name))
        assert [p[base[1] :] for p in remote.parts(name)] == [
            p[base[0] :] for p in local.parts(name)
        ]


def test_reruns_on_s3_do_no_work(lakes):
    _, remote = lakes
    r = cli("ingest", "--lake", remote.uri, *DEMO)
    assert r.exit_code == 0 and "(2 unchanged)" in r.output, r.output
    r = cli("analyse", "--lake", remote.uri, "--base-skill", SKILL)
    assert r.exit_code == 0 and "0 to analyse" in r.output, r.output


@pytest.mark.parametrize(
    "query",
    [
        "select source, outcome, count(*) as n from trajectories group by all order by all",
        "select tool_name, count(*) as n, sum(is_error::int) as errors from tool_calls "
        "group by all order by n desc, tool_name limit 20",
        "select rule, kind, count(*) as n from lessons group by all order by all",
        # every column but when each lake analysed the run
        "select * exclude (created_at) from lesson_facts order by lesson_id limit 50",
    ],
)
def test_sql_on_s3_answers_as_on_a_local_lake(lakes, query):
    local, remote = lakes
    out = [cli("sql", "--lake", lake.uri, "--format", "csv", query) for lake in (local, remote)]
    assert [r.exit_code for r in out] == [0, 0], out[1].output
    assert out[1].output == out[0].output and out[0].output.count("\n") > 2


def test_stats_on_s3(lakes):
    local, remote = lakes
    out = [cli("stats", "--lake", lake.uri) for lake in (local, remote)]
    assert out[1].exit_code == 0, out[1].output
    assert out[1].output == out[0].output


def test_coverage_on_s3_matches_a_local_lake(s3, tmp_path):
    """The report's hand-built lake (consolidation runs included), once local, once in S3."""
    local, remote = Lake(tmp_path / "lake"), s3.lake("coverage")
    fixture.build(local, tmp_path / "out" / "skill")
    fixture.build(remote, tmp_path / "out" / "skill")
    got = {}
    for lake, out in ((local, tmp_path / "local"), (remote, tmp_path / "s3")):
        r = cli("coverage", "--lake", lake.uri, "--json", "--html", out / "report.html", "-o", out)
        assert r.exit_code == 0, r.output
        assert (out / "report.html").is_file()
        got[lake.uri] = json.loads(r.stdout)
        got[lake.uri].pop("report")
        got[lake.uri]["tables"] = {
            p.name: pl.read_parquet(p) for p in sorted(out.glob("*.parquet"))
        }
    want, have = got[local.uri], got[remote.uri]
    assert have["summary"] == want["summary"] and have["statements"] == want["statements"]
    assert have["summary"]["failures_covered"] > 0
    assert have["tables"].keys() == want["tables"].keys() and len(want["tables"]) >= 6
    for name, frame in want["tables"].items():
        assert have["tables"][name].equals(frame), name


def test_coverage_drift_against_a_batch_in_s3(s3, tmp_path):
    local = Lake(tmp_path / "lake")
    fixture.build(local, tmp_path / "out" / "skill")
    batch_local, batch_s3 = Lake(tmp_path / "batch"), s3.lake("batch")
    for batch in (batch_local, batch_s3):
        fixture.build(batch, tmp_path / "unused", only_held_out=True)
    drift = []
    for batch in (batch_local, batch_s3):
        r = cli("coverage", "--lake", local.uri, "--against", batch.uri, "--json", "--no-html")
        assert r.exit_code == 0, r.output
        drift.append(json.loads(r.stdout)["summary"]["drift"])
    assert drift[1] == drift[0] and drift[0]["n_lessons"] > 0


def test_a_mistyped_s3_lake_is_named(s3):
    bucket = s3.bucket("typo")
    r = cli("sql", "--lake", f"s3://{bucket}/no-lake", "select 1")
    assert r.exit_code == 1 and f"no lake at s3://{bucket}/no-lake" in r.output
    r = cli("ingest", "--lake", "s3://no-such-bucket/lake", DEMO[0])
    assert r.exit_code == 2
    assert "s3://no-such-bucket/lake: bucket 'no-such-bucket' does not exist" in r.output
    r = cli("analyse", "--lake", f"s3://{bucket}/no-lake")
    assert r.exit_code == 1 and "holds no trajectories" in r.output


def test_model_calls_are_cached_and_counted_in_an_s3_lake(s3, loopback, tmp_path):
    from pipeline.llm import LLM, ChatRequest
    from pipeline.llm.commands import calls_report

    settings = loopback.settings(concurrency=2)
    asks = [
        ChatRequest(messages=[{"role": "user", "content": f"q{i}"}], stage="analyse")
        for i in range(6)
    ]
    local, remote = Lake(tmp_path / "lake"), s3.lake("calls")
    for lake in (local, remote):
        LLM(settings, lake).map(asks)
        again = LLM(settings, lake).map(asks)
        assert all(r.cache_hit for r in again)
    assert len(loopback.chat_requests) == 12  # once per lake: the second map read the lake
    counts = ["stage", "model", "requests", "cache_hits", "errors", "tokens_in", "tokens_out"]
    want, have = (calls_report(lake)[0].select(counts) for lake in (local, remote))
    assert have.equals(want) and want.filter(pl.col("cache_hits") > 0).height > 0
    r = cli("calls", "--lake", remote.uri, "--json")
    assert r.exit_code == 0, r.output
    assert '"requests": 12' in r.stdout and '"cache_hits": 6' in r.stdout, r.stdout


CONSOLIDATION = {
    "consolidations": ["run_id"],
    "clusters": ["cluster_id"],
    "cluster_members": ["lesson_id"],
    "merge_nodes": ["node_id"],
    "merge_edges": ["parent_node_id", "child_id"],
    "patch_ops": ["op_id"],
    "skill_lines": ["file", "line_no"],
    "dropped": ["lesson_id", "stage"],
}


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_consolidate_on_s3_writes_the_skill_of_a_local_lake(lakes, tmp_path):
    local, remote = lakes
    skills = {}
    for where, lake in (("local", local), ("s3", remote)):
        skills[where] = tmp_path / where / "airline-policy"
        r = cli("consolidate", "--lake", lake.uri, "--base-skill", SKILL, "--out", skills[where])
        assert r.exit_code == 0, r.output
    want = files_of(skills["local"])
    assert "SKILL.md" in want and len(want) > 2
    assert files_of(skills["s3"]) == want
    for name, key in CONSOLIDATION.items():
        mine = table(local, name, key).drop("out_dir", "seconds", strict=False)
        theirs = table(remote, name, key).drop("out_dir", "seconds", strict=False)
        assert mine.height > 0 and theirs.equals(mine), name
    r = cli("coverage", "--lake", remote.uri, "--skill", skills["s3"], "--json", "--no-html")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"]["failures_covered"] > 0


def test_distill_into_an_s3_lake(s3, tmp_path):
    lake = s3.lake("distill")
    skill = tmp_path / "airline-policy"
    r = cli("distill", *DEMO, "--lake", lake.uri, "--base-skill", SKILL, "--out", skill)
    assert r.exit_code == 0, r.output
    assert (skill / "SKILL.md").is_file() and (tmp_path / "airline-policy.report.html").is_file()
    assert lake.read("skill_lines").height > 0 and lake.read("lessons").height > 0
