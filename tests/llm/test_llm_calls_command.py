"""`trace2skill calls` and its SQL, on a hand-made llm_calls table and on a real run."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pipeline import schemas
from pipeline.cli import main
from pipeline.llm import LLM, ChatRequest
from pipeline.llm.commands import calls_report


def rows(n: int, **fields) -> list[dict]:
    base = {
        "key": "k",
        "stage": "analyse",
        "kind": "chat",
        "model": "m1",
        "params": "{}",
        "prompt_version": "p1",
        "request": "[]",
        "response": "{}",
        "vector": None,
        "finish_reason": "stop",
        "tag": None,
        "tokens_in": 100,
        "tokens_out": 10,
        "latency_ms": 0.0,
        "cost_usd": 0.5,
        "attempts": 1,
        "error": None,
        "cache_hit": False,
        "batch_id": None,
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }
    return [
        base
        | {
            "call_id": f"{fields.get('stage', 'analyse')}-{fields.get('error')}-{fields.get('cache_hit')}-{i}"
        }
        | {k: (v(i) if callable(v) else v) for k, v in fields.items()}
        for i in range(n)
    ]


@pytest.fixture
def made_lake(lake):
    latencies = [float(x) for x in range(1, 101)]
    data = (
        rows(100, latency_ms=lambda i: latencies[i])
        + rows(
            20, cache_hit=True, tokens_in=0, tokens_out=0, cost_usd=0.0, attempts=0, latency_ms=1.0
        )
        + rows(
            3,
            error="HTTP 500: boom (gave up after 7 attempts)",
            attempts=7,
            tokens_in=0,
            tokens_out=0,
            cost_usd=0.0,
            latency_ms=500.0,
        )
        + rows(2, error="budget exhausted", attempts=0, tokens_in=0, tokens_out=0, cost_usd=0.0)
        + rows(
            5,
            stage="cluster",
            kind="embedding",
            model="e1",
            tokens_out=0,
            cost_usd=0.01,
            latency_ms=10.0,
        )
    )
    frame = pl.DataFrame(data, schema=schemas.table("llm_calls").columns)
    lake.write_part("llm_calls", frame, part="made")
    return lake, latencies + [500.0] * 3


def test_report_counts_tokens_costs_and_percentiles(made_lake):
    lake, analyse_latency = made_lake
    by, errors = calls_report(lake)
    analyse, cluster, total = by.to_dicts()
    assert (analyse["stage"], analyse["kind"], total["is_total"]) == ("analyse", "chat", True)
    assert analyse["requests"] == 125 and analyse["server_requests"] == 103
    assert analyse["cache_hits"] == 20 and analyse["errors"] == 5
    assert (analyse["tokens_in"], analyse["tokens_out"]) == (10_000, 1_000)
    assert analyse["cost_usd"] == pytest.approx(50.0) and analyse["attempts"] == 121
    assert analyse["hit_rate"] == pytest.approx(20 / 125, abs=1e-4)
    for q in (50, 90, 99):
        assert analyse[f"p{q}_ms"] == pytest.approx(np.percentile(analyse_latency, q))
    assert cluster["requests"] == 5 and cluster["cost_usd"] == pytest.approx(0.05)
    assert total["requests"] == 130 and total["tokens_in"] == 10_500
    assert total["stage"] is None and total["cost_usd"] == pytest.approx(50.05)
    assert errors.select("reason", "errors").rows() == [
        ("HTTP 500: boom", 3),
        ("budget exhausted", 2),
    ]


def test_filters_by_stage_and_model(made_lake):
    lake, _ = made_lake
    by, errors = calls_report(lake, stage="cluster")
    assert by["requests"].to_list() == [5, 5] and errors.is_empty()
    by, _ = calls_report(lake, model="nope")
    assert by.is_empty()


def test_calls_command_json_and_table(made_lake):
    lake, _ = made_lake
    runner = CliRunner()
    out = runner.invoke(main, ["calls", "--lake", lake.uri, "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert [r["stage"] for r in payload["by_stage_model"]] == ["analyse", "cluster"]
    assert payload["total"]["requests"] == 130 and payload["errors"][0]["errors"] == 3
    out = runner.invoke(
        main, ["calls", "--lake", lake.uri, "--errors", "1"], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0
    assert "total" in out.stdout and "HTTP 500: boom" in out.stdout
    assert "budget exhausted" not in out.stdout


def test_calls_command_on_an_empty_lake_and_bad_options(lake):
    runner = CliRunner()
    out = runner.invoke(main, ["calls", "--lake", lake.uri])
    assert out.exit_code == 0 and "no model calls" in out.stderr
    out = runner.invoke(main, ["calls", "--lake", lake.uri, "--json"])
    assert json.loads(out.stdout)["total"] is None
    out = runner.invoke(main, ["calls", "--lake", lake.uri, "--errors", "-1"])
    assert out.exit_code == 2 and "--errors" in out.output
    assert runner.invoke(main, ["calls"]).exit_code == 2


def test_calls_after_a_real_run(loopback, lake):
    loopback.fail("500", times=3)
    settings = loopback.settings(
        max_retries=1, concurrency=1, prices={"loopback-model": (1.0, 1.0)}
    )
    reqs = [
        ChatRequest(messages=[{"role": "user", "content": f"q{i}"}], stage="analyse")
        for i in range(8)
    ]
    first = LLM(settings, lake)
    first.map(reqs)
    LLM(settings, lake).map(reqs)
    by, errors = calls_report(lake)
    total = by.filter("is_total").row(0, named=True)
    assert total["requests"] == 16 and total["errors"] == 1 and total["cache_hits"] == 7
    assert total["attempts"] == 2 + 2 + 6 + 1
    assert total["tokens_in"] > first.usage.tokens_in > 0
    assert errors["reason"].to_list() == ["HTTP 500: The server had an error"]


def test_calls_names_what_it_cannot_read(lake, tmp_path):
    runner = CliRunner()
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = runner.invoke(main, ["calls", "--lake", str(afile)])
    assert out.exit_code == 1 and "is a file, not a lake folder" in out.output
    folder = Path(lake.table_dir("llm_calls"))
    folder.mkdir(parents=True)
    (folder / "part-bad.parquet").write_bytes(b"junk")
    out = runner.invoke(main, ["calls", "--lake", lake.uri])
    assert out.exit_code == 1 and "part-bad.parquet" in out.output
