"""Batch mode through the server's files + batches API, and through files on disk."""

import asyncio
import json

import polars as pl
import pydantic

from pipeline.llm import LLM, ChatRequest
from pipeline.llm import batch as batch_mode
from pipeline.llm.types import prepare


class Verdict(pydantic.BaseModel):
    label: str
    score: int = pydantic.Field(ge=0, le=10)


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], stage="batch", **kw)


def echo(body):
    return f"echo {body['messages'][-1]['content']}"


def test_batch_results_match_direct_calls_and_carry_the_batch_id(loopback, lake):
    loopback.responder = echo
    loopback.batch_polls = 2
    llm = LLM(loopback.settings(batch=True), lake)
    reqs = [ask(f"q{i}") for i in range(12)] + [ask("q3")]
    results = llm.map(reqs)
    assert [r.content for r in results] == [f"echo q{i}" for i in range(12)] + ["echo q3"]
    assert all(r.ok for r in results) and results[-1].cache_hit
    assert len(loopback.batches) == 1 and loopback.chat_requests == []
    batch_id = next(iter(loopback.batches))
    paths = [r["path"] for r in loopback.received]
    assert paths.count(f"/v1/batches/{batch_id}") == 3  # polled until done
    uploaded = next(iter(loopback.files.values()))
    line = json.loads(uploaded["data"].decode().splitlines()[0])
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["custom_id"] == results[0].key and line["body"]["messages"][0]["content"] == "q0"
    assert uploaded["meta"]["purpose"] == "batch"
    calls = lake.read("llm_calls")
    assert calls.filter(~pl.col("cache_hit"))["batch_id"].to_list() == [batch_id] * 12
    assert calls.height == 13 and llm.usage.tokens_in > 0
    assert not (
        lake.path("_batches")
        and list((lake.base / __import__("pathlib").Path("_batches")).glob("*") if False else [])
    )
    # A rerun submits nothing.
    again = LLM(loopback.settings(batch=True), lake).map(reqs)
    assert all(r.cache_hit for r in again) and len(loopback.batches) == 1


def test_failed_lines_become_error_rows_and_a_rerun_retries_only_them(loopback, lake):
    loopback.responder = echo
    loopback.fail("500", times=2)
    reqs = [ask(f"q{i}") for i in range(6)]
    results = LLM(loopback.settings(batch=True), lake).map(reqs)
    failed = [r for r in results if not r.ok]
    assert len(failed) == 2 and all(r.error.startswith("HTTP 500") for r in failed)
    calls = lake.read("llm_calls")
    assert calls.filter(pl.col("error").is_not_null())["batch_id"].null_count() == 0
    again = LLM(loopback.settings(batch=True, batch_max_requests=100), lake).map(reqs)
    assert all(r.ok for r in again) and sum(not r.cache_hit for r in again) == 2
    second = list(loopback.batches)[1]
    assert len(loopback.files[loopback.batches[second]["input_file_id"]]["data"].splitlines()) == 2


def test_batch_output_failing_its_schema_is_repaired(loopback, lake):
    loopback.script({"label": "x", "score": 50}, {"label": "x", "score": 5})
    result = LLM(loopback.settings(batch=True), lake).map([ask("rate", response_model=Verdict)])[0]
    assert result.ok and result.parsed.score == 5 and result.attempts == 2
    assert len(loopback.chat_requests) == 1  # the repair went straight to the server


def test_batches_split_by_size_and_stop_at_the_budget(loopback, lake):
    loopback.responder = lambda body: {
        "content": "ok",
        "usage": {"prompt_tokens": 10, "completion_tokens": 10},
    }
    llm = LLM(loopback.settings(batch=True, batch_max_requests=4, token_budget=100), lake)
    results = llm.map([ask(f"q{i}") for i in range(12)])
    assert len(loopback.batches) == 2 and llm.budget_exhausted
    assert [r.ok for r in results] == [True] * 8 + [False] * 4
    assert {r.error for r in results[8:]} == {"budget exhausted"}


def test_a_run_killed_while_waiting_resumes_the_same_job(loopback, lake):
    loopback.responder = echo
    llm = LLM(loopback.settings(batch=True), lake)
    reqs = [ask(f"q{i}") for i in range(5)]
    prepared = [prepare(r, llm.settings) for r in reqs]
    batch_id, error = asyncio.run(batch_mode._submit(llm, prepared[:3]))  # then "killed"
    assert error is None and len(loopback.batches) == 1
    results = LLM(loopback.settings(batch=True), lake).map(reqs)
    assert [r.content for r in results] == [f"echo q{i}" for i in range(5)]
    assert len(loopback.batches) == 2  # the old job for three, a new one for the other two
    ids = lake.read("llm_calls").sort("tag", "created_at")["batch_id"].to_list()
    assert ids.count(batch_id) == 3
    assert batch_mode._records(llm) == []  # folded jobs are forgotten


def run_batch_file(loopback, requests_path, results_path):
    """What an offline batch runner does: answer every request line into a results file."""
    out = []
    for raw in requests_path.read_text().splitlines():
        line = json.loads(raw)
        status, body, _ = loopback.answer_chat(line["body"])
        out.append(
            {
                "id": "vllm-" + line["custom_id"],
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": "r", "body": body},
                "error": None,
            }
        )
    results_path.write_text("".join(json.dumps(o) + "\n" for o in out))


def test_offline_batch_files_round_trip(loopback, lake, tmp_path):
    folder = tmp_path / "batches"
    loopback.responder = echo
    settings = loopback.settings(batch=True, batch_dir=folder, base_url="http://127.0.0.1:9/v1")
    reqs = [ask(f"q{i}") for i in range(4)]
    first = LLM(settings, lake).map(reqs)
    assert all(not r.ok and r.error.startswith("awaiting batch results") for r in first)
    (requests_file,) = folder.glob("requests-*.jsonl")
    lines = [json.loads(x) for x in requests_file.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [r.key for r in first]
    assert lake.parts("llm_calls") == []  # nothing was answered yet
    results_file = requests_file.with_name(requests_file.stem + ".results.jsonl")
    run_batch_file(loopback, requests_file, results_file)
    second = LLM(settings, lake).map(reqs)
    assert [r.content for r in second] == [f"echo q{i}" for i in range(4)]
    assert set(lake.read("llm_calls")["batch_id"].to_list()) == {requests_file.stem}
    third = LLM(settings, lake).map(reqs)
    assert all(r.cache_hit for r in third)
    assert loopback.chat_requests == []  # the server address was never used


def test_offline_batch_repair_goes_into_the_next_file(loopback, lake, tmp_path):
    folder = tmp_path / "batches"
    settings = loopback.settings(batch=True, batch_dir=folder)
    req = ask("rate", response_model=Verdict)
    LLM(settings, lake).map([req])
    (requests_file,) = folder.glob("requests-*.jsonl")
    loopback.script({"label": "x", "score": 11})
    run_batch_file(loopback, requests_file, folder / f"{requests_file.stem}.results.jsonl")
    second = LLM(settings, lake).map([req])[0]
    assert not second.ok and second.error.startswith("awaiting batch results")
    requests = [p for p in folder.glob("requests-*.jsonl") if not p.name.endswith(".results.jsonl")]
    (repair_file,) = [p for p in requests if p != requests_file]
    line = json.loads(repair_file.read_text())
    assert (
        line["custom_id"] == f"{second.key}:repair"
        and "score" in line["body"]["messages"][-1]["content"]
    )
    loopback.script({"label": "x", "score": 3})
    run_batch_file(loopback, repair_file, folder / f"{repair_file.stem}.results.jsonl")
    third = LLM(settings, lake).map([req])[0]
    assert third.ok and third.parsed.score == 3 and third.attempts == 2


def test_unreadable_result_lines_are_named_and_skipped(tmp_path):
    path = tmp_path / "x.results.jsonl"
    good = {
        "custom_id": "a",
        "response": {"status_code": 500, "body": {"error": {"message": "boom"}}},
    }
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"no_id": 1}) + "\n")
    found, problems = batch_mode.parse_results(path.read_text(), str(path))
    assert found == {"a": (None, "HTTP 500: boom")}
    assert problems == [
        f"{path} line 2: not a batch result (JSONDecodeError)",
        f"{path} line 3: not a batch result (KeyError)",
    ]


def test_batch_lines_carry_no_grammar_only_keywords():
    from pipeline.llm.batch import request_line
    from pipeline.llm.endpoint import with_choices

    schema = {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"type": "integer"}}},
    }
    fmt = with_choices(
        {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}, {"steps": [1, 2]}
    )
    assert fmt["json_schema"]["schema"]["properties"]["steps"]["items"]["x-grammar"] == {
        "enum": [1, 2]
    }
    line = json.loads(request_line("c", {"model": "m", "messages": [], "response_format": fmt}))
    assert line["body"]["response_format"]["json_schema"]["schema"] == schema
