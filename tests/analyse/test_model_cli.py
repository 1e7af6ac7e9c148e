"""`trace2skill analyse` with a model, as a user runs it: the shared model options, the default
analyst, the summary of calls, tokens and cost, and clear refusals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from tests.analyse import scripted
from tests.analyse.scripted import answer


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No model from the environment or a settings file in the working directory."""
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "T2S_MODEL", "T2S_LAKE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str):
    return CliRunner().invoke(main, ["analyse", *args])


def cell(output: str, label: str) -> str:
    """The value beside `label` in the summary table."""
    for line in output.splitlines():
        parts = [p.strip() for p in line.strip("│ ").split("│")]
        if len(parts) == 2 and parts[0] == label:
            return parts[1]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_a_model_without_an_analyst_runs_single(env, loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = answer
    toml = lake.uri + ".toml"
    with open(toml, "w") as fh:
        fh.write('[model]\nretry_base_s = 0.01\n[model.prices]\n"loopback-model" = [1.0, 2.0]\n')
    common = ["--lake", lake.uri, "--model", "loopback-model", "--base-url", loopback.url]
    common += ["--api-key", "k", "--settings", toml, "--concurrency", "4"]
    first = invoke(*common, "--max-lessons", "2")
    assert first.exit_code == 0, first.output
    assert "analyse: single (loopback-model, single-v2-" in first.output
    assert cell(first.output, "model calls (cache hits)") == "20 (0)"
    assert float(cell(first.output, "cost (USD)")) > 0 and "single:failure" in first.output
    assert len(loopback.chat_requests) == 20
    body = loopback.chat_requests[0]
    assert body["model"] == "loopback-model"
    assert (
        body["response_format"]["json_schema"]["schema"]["properties"]["lessons"]["maxItems"] == 2
    )

    loopback.reset()
    again = invoke(*common, "--max-lessons", "2")
    assert again.exit_code == 0 and cell(again.output, "skipped (already analysed)") == "20"
    assert loopback.chat_requests == []

    loopback.fail("500", times=1000)
    other = invoke(*common, "--analyst", "agentic", "--max-turns", "2", "--limit", "1")
    assert other.exit_code == 3, other.output
    assert "error: trajectory c0: model call failed at turn 1: [server] HTTP 500" in other.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--analyst", "single"], "the single analyst needs a model: pass --model"),
        (["--analyst", "miner", "--model", "gpt-4o"], "the miner analyst runs offline"),
        (["--model", "gpt-4o"], "model 'gpt-4o' needs an API key"),
        (
            ["--model", "m", "--api-key", "k", "--max-turns", "3"],
            "max_turns is an option of the agentic analyst, not of single",
        ),
        (["--render-tokens", "900"], "render_tokens is an option of the single and agentic"),
        (["--model", "m", "--api-key", "k", "--workers", "2"], "--workers applies to the miner"),
        (
            ["--analyst", "agentic", "--model", "m", "--api-key", "k", "--batch"],
            "--batch applies to the single analyst",
        ),
        (["--model", "m", "--api-key", "k", "--concurrency", "0"], "invalid model settings"),
    ],
)
def test_refusals_are_clear(env, lake, args, message):
    scripted.small_lake(lake)
    result = invoke("--lake", lake.uri, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not lake.exists("analyses")
