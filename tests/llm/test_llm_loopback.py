"""The loopback server speaks the real OpenAI shapes: the official client parses every answer."""

import json
import time

import openai
import pydantic
import pytest
from loopback import FAULTS, Loopback, minimal_instance


class Item(pydantic.BaseModel):
    name: str
    count: int


class Order(pydantic.BaseModel):
    items: list[Item] = pydantic.Field(min_length=1)
    kind: str = pydantic.Field(pattern="^(a|b)$", json_schema_extra={"enum": ["a", "b"]})
    note: str | None
    ok: bool
    score: float = pydantic.Field(ge=0.5)


@pytest.fixture
def client(loopback):
    return openai.OpenAI(base_url=loopback.url, api_key="k", max_retries=0, timeout=5)


def test_chat_completion_parses_with_usage_and_ids(client, loopback):
    loopback.script("hello there")
    out = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], seed=1
    )
    assert out.id.startswith("chatcmpl-") and out.object == "chat.completion"
    assert out.choices[0].message.content == "hello there"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    assert loopback.chat_requests[0]["seed"] == 1


def test_structured_output_default_is_a_valid_instance(client):
    out = client.chat.completions.parse(
        model="m", messages=[{"role": "user", "content": "x"}], response_format=Order
    )
    parsed = out.choices[0].message.parsed
    assert isinstance(parsed, Order) and len(parsed.items) == 1 and parsed.score >= 0.5


def test_minimal_instance_covers_the_schema_shapes():
    assert Order.model_validate(minimal_instance(Order.model_json_schema()))
    assert minimal_instance({"type": "string", "minLength": 3}) == "xxx"
    assert minimal_instance({"type": "integer", "exclusiveMinimum": 4}) == 5
    assert minimal_instance({"anyOf": [{"type": "null"}, {"type": "boolean"}]}) is False
    assert minimal_instance({"type": ["null", "number"]}) == 0.0
    assert minimal_instance({"const": "c"}) == "c"


def test_tool_calls_parse_as_typed_objects(client, loopback):
    loopback.script(
        {"tool_calls": [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": "{}"}]}
    )
    out = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    calls = out.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["f", "g"] and calls[0].id.startswith("call_")
    assert json.loads(calls[0].function.arguments) == {"a": 1}
    assert out.choices[0].finish_reason == "tool_calls"


def test_embeddings_and_models(client, loopback):
    out = client.embeddings.create(model="e", input=["a b", "c"], encoding_format="float")
    assert [d.index for d in out.data] == [0, 1] and len(out.data[0].embedding) == 64
    assert out.usage.prompt_tokens > 0
    assert [m.id for m in client.models.list()] == ["loopback-model"]


def test_files_and_batches_round_trip(client, loopback):
    line = {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}  # fmt: skip
    uploaded = client.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    assert client.batches.retrieve(batch.id).status == "in_progress"
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 1
    result = json.loads(client.files.content(done.output_file_id).text)
    assert result["custom_id"] == "c1" and result["response"]["status_code"] == 200
    assert result["response"]["body"]["choices"][0]["message"]["content"].startswith("loopback")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")


def test_faults_reach_the_client_as_the_real_errors(client, loopback):
    messages = [{"role": "user", "content": "x"}]
    loopback.retry_after = 7
    loopback.fail("429")
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="m", messages=messages)
    assert err.value.response.headers["retry-after"] == "7"
    loopback.fail("500")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=messages)
    loopback.hang_s = 0.5
    loopback.fail("timeout")
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.1).chat.completions.create(model="m", messages=messages)
    loopback.fail("disconnect")
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=messages)
    for kind in ("truncated", "invalid_json"):
        loopback.fail(kind)
        raw = client.chat.completions.with_raw_response.create(model="m", messages=messages)
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw.http_response.text)
    loopback.fail("bad_schema")
    out = client.chat.completions.create(model="m", messages=messages)
    with pytest.raises(pydantic.ValidationError):
        Item.model_validate_json(out.choices[0].message.content)
    assert set(loopback.faults) == set(FAULTS)


def test_forced_faults_can_target_chosen_requests(client, loopback):
    loopback.fail("500", times=1, match=lambda body: body["messages"][0]["content"] == "b")
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
    with pytest.raises(ValueError, match="unknown fault"):
        loopback.fail("nope")


def test_fault_rate_latency_script_order_and_records():
    with Loopback(fault_rate=1.0, fault_kinds=("500",), latency_s=0.1) as server:
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)
        t0 = time.perf_counter()
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert time.perf_counter() - t0 >= 0.1
        server.fault_rate = 0.0
        server.script(
            "one", {"content": {"a": 1}}, {"status": 418, "body": {"error": {"message": "teapot"}}}
        )
        replies = [
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": str(i)}]
            )
            for i in range(2)
        ]
        assert [r.choices[0].message.content for r in replies] == ["one", '{"a": 1}']
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "t"}])
        assert err.value.status_code == 418
        assert [r["body"]["messages"][0]["content"] for r in server.received] == [
            "x",
            "0",
            "1",
            "t",
        ]
        server.reset()
        assert server.received == [] and server.faults == {}
