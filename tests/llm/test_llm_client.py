"""The model layer against the loopback server: answers, structured output, tools, cache, faults."""

import asyncio
import time
from pathlib import Path

import pydantic
import pytest

from pipeline.llm import LLM, ChatRequest, ModelSettings


class Verdict(pydantic.BaseModel):
    label: str
    score: int = pydantic.Field(ge=0, le=10)


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], stage="test", **kw)


def last_user(body: dict) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def test_map_keeps_order_and_counts_usage(loopback, lake):
    loopback.responder = lambda body: f"echo {last_user(body)}"
    llm = LLM(loopback.settings(concurrency=8), lake)
    results = llm.map([ask(f"q{i}") for i in range(40)])
    assert [r.content for r in results] == [f"echo q{i}" for i in range(40)]
    assert all(r.ok and not r.cache_hit and r.attempts == 1 for r in results)
    assert llm.usage.n_calls == 40 and llm.usage.cache_hits == 0
    assert llm.usage.tokens_in == sum(r.tokens_in for r in results) > 0
    assert results[0].message == {"role": "assistant", "content": "echo q0"}


def test_structured_output_sends_the_schema_and_validates(loopback, lake):
    llm = LLM(loopback.settings(), lake)
    loopback.script({"label": "good", "score": 7})
    result = llm.map([ask("rate it", response_model=Verdict)])[0]
    assert result.ok and result.parsed == Verdict(label="good", score=7)
    fmt = loopback.chat_requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Verdict"
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"label", "score"}


def test_invalid_output_gets_one_repair_showing_the_error(loopback, lake):
    llm = LLM(loopback.settings(), lake)
    loopback.script({"label": "x", "score": 99}, {"label": "x", "score": 9})
    result = llm.map([ask("rate", response_model=Verdict)])[0]
    assert result.ok and result.parsed.score == 9 and result.attempts == 2
    repair = loopback.chat_requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"label": "x", "score": 99}'}
    assert "score" in repair[-1]["content"] and "less than or equal to 10" in repair[-1]["content"]
    # Both calls are paid for.
    assert result.tokens_in > 0 and llm.usage.n_calls == 1


def test_output_still_invalid_after_repair_is_an_error_row(loopback, lake):
    llm = LLM(loopback.settings(), lake)
    loopback.script("not json at all", '{"label": 3}')
    result = llm.map([ask("rate", response_model=Verdict)])[0]
    assert not result.ok and result.parsed is None
    assert result.error.startswith("invalid output after one repair")
    assert len(loopback.chat_requests) == 2
    row = lake.read("llm_calls").row(0, named=True)
    assert row["error"] == result.error and row["response"] and row["attempts"] == 2
    # Error rows are never served: the rerun asks again.
    loopback.script({"label": "ok", "score": 1})
    again = LLM(loopback.settings(), lake).map([ask("rate", response_model=Verdict)])[0]
    assert again.ok and not again.cache_hit and len(loopback.chat_requests) == 3


def test_tool_calls_are_decoded_and_ready_for_the_next_turn(loopback, lake):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_user",
                "parameters": {
                    "type": "object",
                    "properties": {"user_id": {"type": "string"}},
                    "required": ["user_id"],
                },
            },
        }
    ]
    loopback.script(
        {"tool_calls": [{"name": "get_user", "arguments": {"user_id": "u1"}, "id": "call_1"}]},
        {"tool_calls": [{"name": "get_user", "arguments": '{"user_id": '}]},
    )
    llm = LLM(loopback.settings(concurrency=1), lake)
    first, broken = llm.map([ask("a", tools=tools), ask("b", tools=tools, tool_choice="auto")])
    assert first.ok and first.finish_reason == "tool_calls"
    assert first.tool_calls == [
        {
            "id": "call_1",
            "name": "get_user",
            "arguments": {"user_id": "u1"},
            "raw": '{"user_id": "u1"}',
        }
    ]
    assert first.message["tool_calls"][0]["function"]["name"] == "get_user"
    assert (
        broken.tool_calls[0]["arguments"] is None and broken.tool_calls[0]["raw"] == '{"user_id": '
    )
    assert loopback.chat_requests[0]["tools"] == tools
    assert loopback.chat_requests[1]["tool_choice"] == "auto"
    # The default answer to a forced tool choice is a call with schema-valid arguments.
    forced = llm.map([ask("c", tools=tools, tool_choice="required")])[0]
    assert forced.tool_calls[0]["arguments"] == {"user_id": "A minimal answer."}
    # A multi-turn conversation: the assistant message and the tool result go back in.
    follow = ask("a", tools=tools)
    follow.messages += [first.message, {"role": "tool", "tool_call_id": "call_1", "content": "{}"}]
    assert llm.map([follow])[0].ok
    assert loopback.chat_requests[-1]["messages"][1]["tool_calls"][0]["id"] == "call_1"


def test_rerun_answers_from_the_cache_with_zero_calls(loopback, lake):
    reqs = [ask(f"q{i}", prompt_version="p1") for i in range(10)]
    LLM(loopback.settings(), lake).map(reqs)
    assert len(loopback.chat_requests) == 10
    llm = LLM(loopback.settings(), lake)
    results = llm.map(reqs)
    assert len(loopback.chat_requests) == 10 and llm.usage.n_calls == 0
    assert all(r.cache_hit and r.tokens_in == 0 and r.cost_usd == 0 for r in results)
    assert results[3].content == "loopback reply to: q3"
    calls = lake.read("llm_calls")
    assert calls.height == 20 and calls["cache_hit"].sum() == 10
    hits = calls.filter("cache_hit")
    assert hits["tokens_in"].sum() == 0 and hits["attempts"].sum() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"seed": 3},
        {"max_tokens": 50},
        {"prompt_version": "p2"},
        {"response_model": Verdict},
        {"tool_choice": "none"},
    ],
)
def test_any_generation_parameter_changes_the_key(loopback, lake, change):
    llm = LLM(loopback.settings(), lake)
    base = llm.map([ask("same", prompt_version="p1")])[0]
    other = llm.map([ask("same", **({"prompt_version": "p1"} | change))])[0]
    assert not other.cache_hit and other.key != base.key
    assert len(loopback.chat_requests) == 2


def test_settings_temperature_and_model_change_the_key(loopback, lake):
    base = LLM(loopback.settings(), lake).map([ask("same")])[0]
    warm = LLM(loopback.settings(temperature=0.9), lake).map([ask("same")])[0]
    other = LLM(loopback.settings(model="other-model"), lake).map([ask("same")])[0]
    assert len({base.key, warm.key, other.key}) == 3
    assert loopback.chat_requests[1]["temperature"] == 0.9
    assert loopback.chat_requests[2]["model"] == "other-model"


def test_api_key_and_server_address_are_not_in_the_key_nor_the_lake(loopback, lake, tmp_path):
    LLM(loopback.settings(api_key="sk-first-secret"), lake).map([ask("same")])
    from loopback import Loopback

    with Loopback() as second:
        llm = LLM(second.settings(api_key="sk-other-secret"), lake)
        assert llm.map([ask("same")])[0].cache_hit
        assert second.chat_requests == []
    for part in lake.parts("llm_calls"):
        data = open(part, "rb").read()
        assert b"secret" not in data and str(loopback.port).encode() not in data


def test_identical_requests_in_flight_share_one_call(loopback, lake):
    loopback.latency_s = 0.05
    llm = LLM(loopback.settings(), lake)
    results = llm.map([ask("dup")] * 5 + [ask("other")])
    assert len(loopback.chat_requests) == 2
    assert [r.cache_hit for r in results].count(False) == 2
    assert len({r.content for r in results[:5]}) == 1
    assert lake.read("llm_calls").height == 6


def test_prices_give_costs_and_an_unknown_model_warns_once(loopback, lake, capsys):
    loopback.script(
        {"content": "a", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}},
        {"content": "b", "usage": {"prompt_tokens": 2000, "completion_tokens": 0}},
    )
    llm = LLM(loopback.settings(prices={"loopback-model": (2.0, 10.0)}, concurrency=1), lake)
    a, b = llm.map([ask("a"), ask("b")])
    assert a.cost_usd == pytest.approx(0.002 + 0.005) and b.cost_usd == pytest.approx(0.004)
    assert llm.usage.cost_usd == pytest.approx(0.011)
    assert lake.read("llm_calls")["cost_usd"].sum() == pytest.approx(0.011)
    free = LLM(loopback.settings(model="unpriced"), lake)
    free.map([ask("c"), ask("d")])
    assert free.usage.cost_usd == 0
    assert capsys.readouterr().err.count("no price for model 'unpriced'") == 1


def test_offline_settings_answer_with_an_error_and_no_call(loopback, lake):
    llm = LLM(ModelSettings(), lake)
    result = llm.map([ask("x")])[0]
    assert not result.ok and "offline" in result.error
    assert loopback.received == []


def test_achat_in_a_running_loop_and_map_from_inside_one(loopback, lake):
    async def main():
        async with LLM(loopback.settings(), lake) as llm:
            one = await llm.achat(ask("async"))
            # The sync wrapper also works while a loop runs (it uses its own thread).
            two = llm.map([ask("sync")])[0]
            return one, two

    one, two = asyncio.run(main())
    assert one.ok and two.ok and one.content.endswith("async")
    assert lake.read("llm_calls").height == 2


def test_settings_seed_and_max_tokens_are_sent(loopback, lake):
    LLM(loopback.settings(seed=11, max_tokens=64), lake).map([ask("x", temperature=0.3)])
    body = loopback.chat_requests[0]
    assert (body["seed"], body["max_tokens"], body["temperature"]) == (11, 64, 0.3)


def test_a_slow_answer_is_within_the_latency(loopback, lake):
    loopback.latency_s = 0.2
    t0 = time.perf_counter()
    result = LLM(loopback.settings(), lake).map([ask("slow")])[0]
    assert result.ok and 200 <= result.latency_ms <= (time.perf_counter() - t0) * 1000 + 1


def test_an_unreadable_log_part_is_skipped_with_a_warning(loopback, lake, capsys):
    LLM(loopback.settings(), lake).map([ask("kept")])
    junk = Path(lake.table_dir("llm_calls")) / "part-junk.parquet"
    junk.write_bytes(b"not parquet")
    llm = LLM(loopback.settings(), lake)
    kept, new = llm.map([ask("kept"), ask("new")])
    assert kept.cache_hit and new.ok and not new.cache_hit
    assert "part-junk.parquet" in capsys.readouterr().err


def test_sync_calls_close_their_http_clients_on_their_own_loop(loopback, lake):
    # A client left open is closed by the garbage collector on a later loop, which fails
    # ("Event loop is closed"): every sync entry point releases its clients before its loop ends.
    from pipeline.llm import run_sync

    llm = LLM(loopback.settings(), lake)
    llm.map([ask("one")])
    assert llm.transport.clients == []

    async def two_calls():
        await llm.achat(ask("two"))
        assert llm.transport.clients  # open while the loop runs
        return await llm.achat(ask("three"))

    assert run_sync(two_calls(), release=[llm]).ok
    assert llm.transport.clients == []
