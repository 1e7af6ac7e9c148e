"""The model layer on first contact with servers that differ: shapes refused and switched, text
answers read, reasoning kept apart, context and length errors classified, streams and silence."""

from __future__ import annotations

import json
from typing import Literal

import polars as pl
import pytest
from pydantic import BaseModel

from pipeline.llm import LLM, ChatRequest
from pipeline.llm.endpoint import Endpoint, skeleton
from pipeline.llm.extract import find_json, lenient, read_structured, split_reasoning
from pipeline.llm.textual import read_action, to_text
from pipeline.llm.transport import classify, context_sizes


class Item(BaseModel):
    title: str
    steps: list[int]
    tool: str | None


class Answer(BaseModel):
    items: list[Item]


class City(BaseModel):
    city: str
    kind: Literal["capital", "other"]


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


LLAMA_CPP_PYTHON_500 = {
    "status": 500,
    "body": {
        "error": {
            "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
            "'msg': \"Input should be 'text' or 'json_object'\"}]",
            "type": "internal_server_error",
        }
    },
}


# -- reading text answers ------------------------------------------------------------------------
def test_reasoning_is_kept_apart_from_the_answer():
    assert split_reasoning('<think>hmm, steps 3</think>\n{"a": 1}') == ('{"a": 1}', "hmm, steps 3")
    assert split_reasoning("thinking out loud</think>answer") == ("answer", "thinking out loud")
    assert split_reasoning("<think>never closed") == ("", "never closed")
    assert split_reasoning("plain") == ("plain", None)


def test_json_is_found_in_fences_and_prose():
    assert find_json('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    assert find_json('Sure! Here it is: {"a": 1} Hope it helps {"b": 2}') == {"a": 1}
    assert find_json("[1, 2]") == [1, 2]
    with pytest.raises(ValueError, match="no JSON"):
        find_json("no json here")


def test_near_misses_are_read_leniently_but_not_guessed():
    one = {"title": "t", "steps": [1]}  # a bare item, without its nullable field
    assert lenient(Answer, one) == {"items": [{"title": "t", "steps": [1], "tool": None}]}
    assert read_structured(Answer, json.dumps([one])).items[0].title == "t"
    with pytest.raises(ValueError, match="steps"):
        read_structured(Answer, '{"items": [{"title": "t"}]}')  # evidence is never made up


def test_the_shape_note_is_a_readable_skeleton():
    shape = skeleton(Answer.model_json_schema())
    assert shape == {
        "items": [{"title": "<string>", "steps": ["<integer>"], "tool": "<string> or null"}]
    }
    assert skeleton(City.model_json_schema())["kind"] == "capital|other"


# -- shaping and switching -------------------------------------------------------------------------
def test_each_structured_mode_shapes_the_body_it_names():
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "response_format": fmt}
    ep = Endpoint("http://h/v1", "m", stream=False)
    assert ep.shape(body)[0]["response_format"] == fmt
    ep.structured = "json_object_schema"
    wire, mode = ep.shape(body)
    assert wire["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
    assert wire["messages"] == body["messages"] and mode == "json_object_schema"  # the grammar
    ep.structured = "json_object"
    wire, _ = ep.shape(body)
    assert wire["response_format"] == {"type": "json_object"}
    assert "<" not in wire["messages"][-1]["content"] and "JSON" in wire["messages"][0]["content"]
    ep.structured = "text"
    wire, _ = ep.shape(body)
    assert "response_format" not in wire and wire["messages"][0]["role"] == "system"


def test_a_reasoning_model_gets_its_own_parameters():
    ep = Endpoint.fresh("https://api.openai.com/v1", "o3-mini")
    wire, _ = ep.shape({"model": "o3-mini", "messages": [], "max_tokens": 9, "temperature": 0})
    assert wire["max_completion_tokens"] == 9 and "max_tokens" not in wire
    assert "temperature" not in wire


def test_a_rejection_that_names_no_feature_switches_nothing():
    ep = Endpoint("http://h/v1", "m")
    wire, _ = ep.shape({"model": "m", "messages": [], "seed": 1})
    assert ep.switch(wire, "model 'm' does not exist", ep.version) is None
    assert ep.switch(wire, "unknown parameter: seed", ep.version) == "seed refused: no longer sent"
    assert "seed" not in ep.shape({"model": "m", "messages": [], "seed": 1})[0]


def test_error_kinds_and_context_sizes():
    assert classify(500, "response_format.type: Input should be 'text'") == "rejected"
    assert classify(500, "The server had an error") == "server"
    assert classify(400, "request (5797 tokens) exceeds the available context size") == "context"
    assert classify(401, "Incorrect API key") == "auth"
    llama = "request (5797 tokens) exceeds the available context size (4096 tokens), try increasing"
    assert context_sizes(llama) == (5797, 4096)
    vllm = "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens"
    assert context_sizes(vllm) == (3000, 2048)
    said_apart = (
        "This model's maximum context length is 4096 tokens. However, you requested 4657 tokens "
        "(4137 in the messages, 520 in the completion)."
    )  # llama-cpp-python and OpenAI: the prompt alone is 4137
    assert context_sizes(said_apart) == (4137, 4096)


def test_a_refused_response_format_switches_once_and_is_remembered(loopback, lake):
    """llama-cpp-python's server answers json_schema with HTTP 500 (a validation error)."""
    loopback.responder = lambda body: (
        LLAMA_CPP_PYTHON_500
        if (body.get("response_format") or {}).get("type") == "json_schema"
        else {"content": '{"city": "Paris", "kind": "capital"}'}
    )
    llm = LLM(loopback.settings(concurrency=1), lake)
    results = llm.map([ask(f"city {i}", response_model=City) for i in range(4)])
    assert all(r.ok and r.parsed.city == "Paris" for r in results)
    formats = [(b.get("response_format") or {}).get("type") for b in loopback.chat_requests]
    assert formats == ["json_schema", "json_object", "json_object", "json_object", "json_object"]
    assert loopback.chat_requests[1]["response_format"]["schema"]["properties"]["city"]
    calls = lake.read("llm_calls")
    assert set(calls["mode"].to_list()) == {"json_object_schema+stream"}
    found = lake.read("model_endpoints").sort("recorded_at")
    assert found["source"].to_list() == ["first_use", "switch"]
    assert found["structured"][-1] == "json_object_schema"
    assert "Input should be" in found["notes"][-1]
    # a later run starts from what was learnt: json_schema is not sent again
    loopback.reset()
    LLM(loopback.settings(), lake).map([ask("city 9", response_model=City)])
    assert loopback.chat_requests[0]["response_format"]["type"] == "json_object"


def test_refused_tools_go_through_the_text_protocol(loopback, lake):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_user",
                "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}},
            },
        }
    ]

    def answer(body):
        if body.get("tools"):
            return {"status": 400, "body": {"error": {"message": "tools are not supported"}}}
        return 'I will look. {"tool": "get_user", "arguments": {"user_id": "u1"}}'

    loopback.responder = answer
    llm = LLM(loopback.settings(concurrency=1), lake)
    first = llm.map([ask("who?", tools=tools)])[0]
    assert first.ok and first.tool_calls[0]["name"] == "get_user"
    assert first.tool_calls[0]["arguments"] == {"user_id": "u1"}
    sent = loopback.chat_requests[-1]
    assert "tools" not in sent and "get_user" in sent["messages"][0]["content"]
    # the next turn's history (native shape) is sent as text: the call, then its result
    turn2 = [
        {"role": "user", "content": "who?"},
        first.message | {"tool_calls": [{**first.message["tool_calls"][0], "id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Mia"},
    ]
    wire = to_text(turn2, tools, None)
    assert wire[2] == {
        "role": "assistant",
        "content": '{"tool": "get_user", "arguments": {"user_id": "u1"}}',
    }
    assert wire[3] == {"role": "user", "content": "Result of get_user:\nMia"}
    assert read_action("the answer is 42", {"get_user"}, "t") is None


def test_an_answer_cut_at_max_tokens_is_a_length_error_not_repaired(loopback, lake):
    loopback.script({"content": '{"city": "Par', "finish_reason": "length"})
    result = LLM(loopback.settings(), lake).map([ask("c", response_model=City, max_tokens=5)])[0]
    assert not result.ok and result.error_kind == "length" and "5 tokens" in result.error
    assert len(loopback.chat_requests) == 1  # no repair: it would be cut again
    row = lake.read("llm_calls").row(0, named=True)
    assert row["error_kind"] == "length" and row["finish_reason"] == "length"


def test_an_over_long_prompt_is_a_context_error_with_both_sizes(loopback, lake):
    message = "request (5797 tokens) exceeds the available context size (4096 tokens)"
    loopback.script({"status": 400, "body": {"error": {"message": message}}})
    result = LLM(loopback.settings(), lake).map([ask("long")])[0]
    assert result.error_kind == "context" and result.context == (5797, 4096)
    assert len(loopback.chat_requests) == 1


def test_think_blocks_and_fences_are_read_and_the_reasoning_stored(loopback, lake):
    loopback.script(
        '<think>Paris is the capital.</think>\n```json\n{"city": "Paris", "kind": "capital"}\n```'
    )
    result = LLM(loopback.settings(), lake).map([ask("c", response_model=City)])[0]
    assert result.ok and result.parsed.kind == "capital"
    assert lake.read("llm_calls")["reasoning"].to_list() == ["Paris is the capital."]


def test_streamed_answers_are_put_back_together_with_their_usage(loopback, lake):
    result = LLM(loopback.settings(), lake).map([ask("hello")])[0]
    assert result.ok and result.content == "loopback reply to: hello" and result.tokens_in > 0
    body = loopback.chat_requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_silence_ends_an_attempt_and_is_retried_only_as_set(loopback, lake):
    loopback.hang_s = 1.0
    loopback.fail("timeout", times=5)
    settings = loopback.settings(timeout_s=0.2, timeout_retries=1, max_retries=6)
    result = LLM(settings, lake).map([ask("slow")])[0]
    assert not result.ok and result.error_kind == "timeout" and result.attempts == 2


def test_llama_cpp_props_give_the_window_and_the_slots(loopback, lake):
    loopback.props = {"total_slots": 2, "default_generation_settings": {"n_ctx": 4096}}
    llm = LLM(loopback.settings(concurrency=16), lake)
    llm.map([ask("x")])
    ep = llm._endpoint
    assert (ep.server, ep.context_tokens, ep.slots) == ("llama.cpp", 4096, 2)
    row = lake.read("model_endpoints").row(0, named=True)
    assert row["context_tokens"] == 4096 and row["source"] == "first_use"
    assert llm._sem._value <= 2  # no more requests in flight than the server has slots


def test_models_check_probes_and_shows(loopback, lake, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    def answer(body):
        kind = (body.get("response_format") or {}).get("type")
        if kind == "json_schema":
            return LLAMA_CPP_PYTHON_500
        return '{"city": "Paris", "country": "France"}' if kind else None

    loopback.responder = answer
    runner = CliRunner()
    args = ["models", "check", "--lake", str(lake.base), "--model", "m", "--base-url", loopback.url]
    out = runner.invoke(main, [*args, "--json"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.stdout)
    assert found["endpoint"]["structured"] == "json_object_schema"
    first = found["checks"][0]
    assert first["ok"] and first["mode"].startswith("json_object_schema")  # after the switch
    assert {c["check"] for c in found["checks"]} >= {"streaming", "prompt size: sample run"}
    shown = runner.invoke(main, ["models", "show", "--lake", str(lake.base), "--json"])
    rows = json.loads(shown.stdout)
    assert rows[0]["structured"] == "json_object_schema" and rows[0]["server"] == "unknown"
    assert pl.DataFrame(rows).height == 1


def test_lower_limits_reach_only_servers_whose_grammar_holds_them():
    from pipeline.analyse.prompts import answer_model

    schema = answer_model(1).model_json_schema()
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "max_tokens": 500,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    }

    def title_of(server: str) -> dict:
        sent, _ = Endpoint(base_url="http://h/v1", model="m", server=server).shape(body)
        return sent["response_format"]["json_schema"]["schema"]["$defs"]["LessonAnswer"][
            "properties"
        ]["title"]

    assert title_of("llama.cpp")["minLength"] == 8  # a grammar: the model cannot stop short
    assert "minLength" not in title_of("openai") and "x-grammar" not in title_of("openai")
