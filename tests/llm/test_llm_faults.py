"""Retries, timeouts, malformed bodies, budgets and the log under faults."""

import time
from pathlib import Path

import polars as pl
import pytest

from pipeline.llm import LLM, ChatRequest


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], stage="test", tag=text, **kw)


@pytest.mark.parametrize("kind", ["429", "500", "truncated", "invalid_json", "disconnect"])
def test_transient_faults_are_retried(loopback, lake, kind):
    loopback.fail(kind, times=2)
    result = LLM(loopback.settings(), lake).map([ask("x")])[0]
    assert result.ok and result.attempts == 3 and result.content == "loopback reply to: x"
    assert loopback.faults[kind] == 2
    assert lake.read("llm_calls")["attempts"].to_list() == [3]


def test_timeout_is_retried(loopback, lake):
    loopback.hang_s = 1.0
    loopback.fail("timeout")
    result = LLM(loopback.settings(timeout_s=0.2), lake).map([ask("x")])[0]
    assert result.ok and result.attempts == 2


def test_retry_after_is_honoured(loopback, lake):
    loopback.fail("429")
    loopback.retry_after = 0.4
    t0 = time.perf_counter()
    result = LLM(loopback.settings(retry_max_s=0.01), lake).map([ask("x")])[0]
    assert result.ok and time.perf_counter() - t0 >= 0.4


def test_giving_up_ends_as_an_error_row_with_the_reason(loopback, lake):
    loopback.fail("500", times=10)
    result = LLM(loopback.settings(max_retries=2), lake).map([ask("x")])[0]
    assert not result.ok and result.attempts == 3
    assert result.error.startswith("HTTP 500") and "gave up after 3 attempts" in result.error
    row = lake.read("llm_calls").row(0, named=True)
    assert row["error"] == result.error and row["attempts"] == 3 and row["tag"] == "x"


def test_client_errors_are_not_retried(loopback, lake):
    loopback.script({"status": 400, "body": {"error": {"message": "bad model"}}})
    result = LLM(loopback.settings(), lake).map([ask("x")])[0]
    assert not result.ok and result.attempts == 1 and "HTTP 400" in result.error
    assert "bad model" in result.error


def test_an_unreachable_server_ends_as_error_results(lake):
    from loopback import Loopback

    server = Loopback()  # bound, never started, then closed: nothing listens on its port
    settings = server.settings(max_retries=1)
    server.stop()
    results = LLM(settings, lake).map([ask("a"), ask("b")])
    assert all(not r.ok and "connection error" in r.error for r in results)


def test_thousand_requests_with_twenty_percent_faults_none_lost_none_duplicated(loopback, lake):
    loopback.fault_rate = 0.2
    loopback.fault_kinds = ("429", "500", "timeout", "truncated", "invalid_json", "disconnect")
    loopback.hang_s = 0.3
    loopback.responder = lambda body: f"answer {body['messages'][-1]['content']}"
    # A 0.1 s silence limit on a busy machine times out answers that were merely slow: let
    # time-outs be retried like the other faults, and let no streak of them open the breaker
    # (which stops sending, by design unlogged: tested on its own), so the test counts
    # behaviour, not timing.
    settings = loopback.settings(
        concurrency=64, timeout_s=0.1, timeout_retries=6, log_flush_rows=100, breaker_after=0
    )
    llm = LLM(settings, lake)
    n = 1000
    results = llm.map([ask(f"r{i}") for i in range(n)])
    assert len(results) == n
    for i, r in enumerate(results):
        assert (r.ok and r.content == f"answer r{i}") or (not r.ok and r.error), (i, r)
    # The faults really happened, at the rate asked of the requests the server received (a share,
    # not a count: how many requests a busy machine sends again depends on its timing).
    received = len(loopback.chat_requests)
    assert 0.1 < sum(loopback.faults.values()) / received < 0.3
    calls = lake.read("llm_calls")
    assert calls.height == n and calls["key"].n_unique() == n  # one row per request
    assert calls["call_id"].n_unique() == n
    assert sorted(calls["tag"].to_list()) == sorted(f"r{i}" for i in range(n))
    errors = calls.filter(pl.col("error").is_not_null())
    assert errors.height == sum(not r.ok for r in results) == llm.usage.errors
    assert (calls["attempts"] > 1).any()  # faulted requests were sent again
    assert len(lake.parts("llm_calls")) >= 10  # written incrementally
    # The rerun answers every ok request from the cache and asks again for the errors only. Which
    # requests went out is counted, not how many times: a busy machine may still time one out.
    loopback.fault_rate = 0.0
    before = len(loopback.chat_requests)
    rerun = settings.model_copy(update={"timeout_s": 5.0})
    again = LLM(rerun, lake).map([ask(f"r{i}") for i in range(n)])
    assert all(r.ok for r in again)
    asked = {b["messages"][-1]["content"] for b in loopback.chat_requests[before:]}
    assert asked == set(errors["tag"])


def test_token_budget_stops_cleanly_and_the_rerun_resumes(loopback, lake):
    loopback.responder = lambda body: {
        "content": "ok",
        "usage": {"prompt_tokens": 60, "completion_tokens": 40},
    }
    reqs = [ask(f"q{i}") for i in range(10)]
    llm = LLM(loopback.settings(concurrency=1, token_budget=300), lake)
    results = llm.map(reqs)
    assert llm.budget_exhausted
    assert [r.ok for r in results] == [True] * 3 + [False] * 7
    assert {r.error for r in results[3:]} == {"budget exhausted"}
    assert len(loopback.chat_requests) == 3 and llm.usage.tokens == 300
    assert lake.read("llm_calls").height == 10  # the unsent requests are logged, not lost
    llm = LLM(loopback.settings(concurrency=1, token_budget=10_000), lake)
    again = llm.map(reqs)
    assert all(r.ok for r in again) and sum(r.cache_hit for r in again) == 3
    assert len(loopback.chat_requests) == 10


def test_cost_budget_stops_cleanly(loopback, lake):
    loopback.responder = lambda body: {
        "content": "ok",
        "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0},
    }
    settings = loopback.settings(
        concurrency=1, cost_budget_usd=2.5, prices={"loopback-model": (1.0, 1.0)}
    )
    llm = LLM(settings, lake)
    results = llm.map([ask(f"q{i}") for i in range(5)])
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert llm.usage.cost_usd == pytest.approx(3.0)


def test_rows_are_flushed_while_the_run_goes_on(loopback, lake):
    llm = LLM(loopback.settings(concurrency=4, log_flush_rows=5), lake)
    llm.map([ask(f"q{i}") for i in range(23)])
    parts = lake.parts("llm_calls")
    assert len(parts) == 5 and lake.read("llm_calls").height == 23
    assert len({p.rsplit("/", 1)[1] for p in parts}) == 5


def test_rows_wait_at_most_flush_s(loopback, lake):
    def answer(body):
        if body["messages"][-1]["content"] == "slow":
            time.sleep(0.5)
        return "done"

    loopback.responder = answer
    llm = LLM(loopback.settings(log_flush_s=0.05, log_flush_rows=1000), lake)
    llm.map([ask("fast"), ask("slow")])
    # The fast row was written while the slow call was still out, then the slow one at the end.
    tags = [pl.read_parquet(p)["tag"].to_list() for p in lake.parts("llm_calls")]
    assert tags == [["fast"], ["slow"]]


def test_two_writers_at_once_do_not_clash(loopback, lake):
    import threading

    def run(prefix):
        LLM(loopback.settings(log_flush_rows=3), lake).map([ask(f"{prefix}{i}") for i in range(20)])

    threads = [threading.Thread(target=run, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = lake.read("llm_calls")
    assert calls.height == 40 and calls["key"].n_unique() == 40


KILLED_WRITER = """
import os, signal, sys
from pipeline.lake import Lake
from pipeline.llm import LLM, ChatRequest, ModelSettings
settings = ModelSettings(model="loopback-model", base_url=sys.argv[2], api_key="k",
                         log_flush_rows=1000, log_flush_s=1000)
llm = LLM(settings, Lake(sys.argv[1]))
async def run():
    for i in range(12):
        await llm.achat(ChatRequest(messages=[{"role": "user", "content": f"q{i}"}], stage="s"))
    os.kill(os.getpid(), signal.SIGKILL)  # nothing flushed, no cleanup
import asyncio
asyncio.run(run())
"""


def test_a_killed_writer_loses_nothing_it_had_answered(loopback, lake):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, lake.uri, loopback.url])
    assert proc.returncode == -9
    assert lake.parts("llm_calls") == [] and len(loopback.chat_requests) == 12
    llm = LLM(loopback.settings(), lake)
    results = llm.map([ask(f"q{i}") for i in range(12)])
    assert all(r.cache_hit for r in results) and len(loopback.chat_requests) == 12
    assert llm.log.recovered == 12
    calls = lake.read("llm_calls")
    assert calls.height == 24 and calls["call_id"].n_unique() == 24
    # The journal is gone once recovered (and ours once closed); nothing is recovered twice.
    llm.close()
    assert list(Path(lake.path("_journal", "llm_calls")).glob("*.jsonl")) == []
    again = LLM(loopback.settings(), lake)
    again.map([ask("q0")])
    assert again.log.recovered == 0 and lake.read("llm_calls").height == 25


def test_the_calls_report_counts_a_killed_writers_rows(loopback, lake):
    import subprocess
    import sys

    from pipeline.llm.commands import calls_report

    subprocess.run([sys.executable, "-c", KILLED_WRITER, lake.uri, loopback.url])
    by, _ = calls_report(lake)
    assert by.filter("is_total")["requests"].to_list() == [12]


def test_an_unclosed_llm_writes_its_rows_at_exit(loopback, lake):
    import subprocess
    import sys

    script = KILLED_WRITER.replace("os.kill(os.getpid(), signal.SIGKILL)", "pass")
    assert subprocess.run([sys.executable, "-c", script, lake.uri, loopback.url]).returncode == 0
    assert lake.read("llm_calls").height == 12
    assert list(Path(lake.path("_journal", "llm_calls")).glob("*.jsonl")) == []


def test_a_live_writers_journal_is_left_alone(loopback, lake):
    writer = LLM(loopback.settings(log_flush_rows=1000, log_flush_s=1000), lake)
    import asyncio

    asyncio.run(writer.achat(ask("pending")))  # journaled, not flushed
    reader = LLM(loopback.settings(), lake)
    reader.map([ask("other")])
    assert reader.log.recovered == 0
    assert lake.read("llm_calls")["tag"].to_list() == ["other"]
    writer.close()
    assert sorted(lake.read("llm_calls")["tag"].to_list()) == ["other", "pending"]


def test_the_breaker_opens_only_on_one_steady_error_in_a_row():
    from pipeline.llm.client import Breaker
    from pipeline.llm.types import ChatResult

    def failed(kind, error):
        return ChatResult(key="k", ok=False, error=error, error_kind=kind)

    breaker = Breaker(3)
    missing = "HTTP 404: The model `m-1` does not exist (request req_8f3a9c2d1e)"
    assert breaker.see(failed("not_found", missing)) is None
    assert breaker.see(failed("not_found", missing.replace("8f3a9c2d1e", "0b1c2d3e4f"))) is None
    assert breaker.see(ChatResult(key="k", ok=True)) is None  # an answer ends the streak
    for _ in range(2):
        assert breaker.see(failed("not_found", missing)) is None
    assert breaker.see(failed("auth", "HTTP 401: bad key")) is None  # another error: a new streak
    assert breaker.see(failed("server", "HTTP 500")) is None  # transient kinds never count
    for _ in range(2):
        assert breaker.see(failed("auth", "HTTP 401: bad key")) is None
    opened = breaker.see(failed("auth", "HTTP 401: bad key"))
    assert opened is not None and "[auth] HTTP 401: bad key" in opened
    assert breaker.reason == opened and breaker.see(failed("auth", "x")) is None
    assert Breaker(0).see(failed("auth", "x")) is None  # 0: never
