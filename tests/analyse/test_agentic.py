"""The agentic analyst end to end against the loopback server: scripted tool-using conversations."""

from __future__ import annotations

import json

import polars as pl

from pipeline.analyse.run import analyse
from tests.analyse import scripted
from tests.analyse.scripted import answer, trajectory_of


def turn_of(body: dict) -> int:
    """How many assistant turns the conversation holds before this request."""
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def tools_of(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def tool_results(body: dict) -> dict[str, str]:
    """tool_call_id -> result text of every tool message in the request."""
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


def calls(*specs) -> dict:
    return {
        "tool_calls": [{"name": n, "arguments": a, "id": f"c{i}"} for i, (n, a) in enumerate(specs)]
    }


WHERE = "trajectory_id in ('f_args', 'q_seen')"
COUNT_ERRORS = (
    "select count(*) as failed from tool_calls where tool_name = 'place_order' and is_error"
)


def test_tools_bad_arguments_and_the_answer(loopback, lake):
    scripted.small_lake(lake)

    def responder(body):
        if trajectory_of(body) == "q_seen":
            return answer(body)  # answers at once, as JSON content
        turn = turn_of(body)
        if turn == 0:
            return calls(
                ("read_steps", {"start": 5, "end": 6}),
                ("search_run", {"pattern": "PLACE_ORDER"}),
                ("query_pool", {"sql": COUNT_ERRORS}),
                ("successful_run", {}),
                ("compare_gold", {}),
            )
        if turn == 1:
            return calls(
                ("read_steps", {"start": "x"}),
                ("read_steps", '{"start": '),
                ("delete_everything", {}),
                ("query_pool", {"sql": "drop table steps"}),
                ("search_run", {"pattern": "(unclosed"}),
            )
        fenced = "```json\n" + json.dumps(answer(body)) + "\n```"
        return {"content": fenced}

    loopback.responder = responder
    summary = analyse(
        lake, analyst="agentic", settings=loopback.settings(concurrency=4), where=WHERE
    )
    assert (summary.n_analysed, summary.n_failed) == (2, 0)
    convo = sorted((b for b in loopback.chat_requests if trajectory_of(b) == "f_args"), key=turn_of)
    assert len(convo) == 3 and all("tool_choice" not in b for b in convo), "auto, by default"
    assert "response_format" not in convo[0]
    assert tools_of(convo[0]) == [
        "read_steps",
        "search_run",
        "query_pool",
        "successful_run",
        "compare_gold",
    ]
    assert "- compare_gold: Diff the agent's write calls" in convo[0]["messages"][0]["content"]

    first = tool_results(convo[1])
    assert first["c0"].startswith('[5] tool_call place_order(user_id="u1"')
    assert "[6] tool_result place_order" in first["c0"]
    assert first["c1"].startswith("2 steps match 'PLACE_ORDER':")
    assert first["c2"] == "failed\n3", "two failed attempts in f_retry and one in s3"
    assert first["c3"].startswith("Successful run 1 of 4 of task t1 (8 runs of the task")
    assert "Trajectory s0 | source shop" in first["c3"]
    assert (
        "wrong arguments: place_order at step 5: items[A1].qty: value, given 2, expected 3"
        in (first["c4"])
    )
    second = tool_results(convo[2])
    assert second["c0"].startswith("error: bad arguments for read_steps: start: Input should be")
    assert second["c1"] == "error: the arguments are not a JSON object: '{\"start\": '"
    assert second["c2"].startswith("error: no tool 'delete_everything'; the tools are read_steps")
    assert second["c3"] == "error: only a SELECT (or WITH ... SELECT) is allowed, not DROP"
    assert second["c4"].startswith("error: Invalid regular expression")
    assert tools_of(next(b for b in loopback.chat_requests if trajectory_of(b) == "q_seen")) == [
        "read_steps",
        "search_run",
        "query_pool",
        "successful_run",
    ], "no gold actions for a QA run: no compare_gold"

    rows = {r["trajectory_id"]: r for r in lake.read("analyses").iter_rows(named=True)}
    assert rows["f_args"]["n_calls"] == 3 and rows["f_args"]["n_tool_calls"] == 10
    assert rows["q_seen"]["n_calls"] == 1 and rows["q_seen"]["n_tool_calls"] == 0
    lessons = lake.read("lessons")
    assert set(lessons["rule"]) == {"agentic:failure"} and lessons.height == 2

    loopback.reset()
    again = analyse(lake, analyst="agentic", settings=loopback.settings(), where=WHERE)
    assert again.n_skipped == 2 and loopback.chat_requests == []


def test_running_out_of_turns_forces_a_final_answer(loopback, lake):
    scripted.small_lake(lake)

    def responder(body):
        if body.get("tool_choice") == "none":
            if trajectory_of(body) == "q_seen":
                return "still not JSON"  # and again after the repair: an error row
            return answer(body)
        return calls(("read_steps", {"start": 0, "end": 1}))

    loopback.responder = responder
    summary = analyse(
        lake, analyst="agentic", settings=loopback.settings(), options={"max_turns": 2}, where=WHERE
    )
    convo = [b for b in loopback.chat_requests if trajectory_of(b) == "f_args"]
    assert [b.get("tool_choice") for b in convo] == [None, None, "none"]
    final = convo[-1]
    assert final["response_format"]["json_schema"]["name"] == "LessonsAnswer"
    assert final["messages"][-1]["content"].startswith("Stop using tools now")
    assert final["messages"][-2]["role"] == "tool", "the last turn's calls were answered first"
    q_seen = [b for b in loopback.chat_requests if trajectory_of(b) == "q_seen"]
    assert len(q_seen) == 4, "two turns, the forced final answer and its one repair"
    assert summary.n_failed == 1
    assert dict(summary.errors)["q_seen"] == (
        "model call failed at final answer after the turn limit (2): [invalid_output] invalid "
        "output after one repair: no JSON object in the reply: 'still not JSON'"
    )
    assert lake.read("lessons")["trajectory_id"].to_list() == ["f_args"]


def test_the_token_budget_and_a_reply_that_is_not_the_answer(loopback, lake):
    scripted.small_lake(lake)

    def responder(body):
        if body.get("tool_choice") == "none":
            return answer(body)
        if trajectory_of(body) == "q_seen":
            return "I think the agent answered Boston where the page said Dedham."
        return calls(("read_steps", {"start": 0, "end": 6}))

    loopback.responder = responder
    analyse(
        lake,
        analyst="agentic",
        settings=loopback.settings(),
        options={"tokens_per_run": 1000},
        where=WHERE,
    )
    by_run: dict[str, list] = {}
    for body in loopback.chat_requests:
        by_run.setdefault(trajectory_of(body), []).append(body.get("tool_choice", "auto"))
    assert by_run["f_args"] == ["auto", "none"], "the second turn would pass 1000 tokens"
    assert by_run["q_seen"] == ["auto", "none"], "prose instead of the JSON: one final turn"
    assert (lake.read("analyses")["status"] == "ok").all()


def test_a_model_fault_mid_conversation_is_an_error_row(loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = lambda body: (
        calls(("search_run", {"pattern": "Search"})) if turn_of(body) == 0 else answer(body)
    )
    loopback.fail("500", times=10, match=lambda b: trajectory_of(b) == "q_seen" and turn_of(b) == 1)
    summary = analyse(
        lake, analyst="agentic", settings=loopback.settings(max_retries=1), where=WHERE
    )
    assert dict(summary.errors)["q_seen"].startswith(
        "model call failed at turn 2: [server] HTTP 500"
    )
    rows = lake.read("analyses").filter(pl.col("trajectory_id") == "q_seen")
    assert rows["n_tool_calls"].to_list() == [1] and rows["n_calls"].to_list() == [2]


def test_a_final_answer_too_long_for_the_window_is_cut_and_asked_once_more(loopback, lake):
    """The server's context error on the forced final turn gives its sizes: the oldest tool
    results are cut to fit them and the final answer is asked again, once."""
    scripted.small_lake(lake)

    def responder(body):
        if trajectory_of(body) != "f_args":
            return answer(body)
        if body.get("tool_choice") == "none":
            tool_chars = sum(
                len(m["content"]) for m in body["messages"]
                if m["role"] == "tool" and "cut to fit" not in m["content"]
            )  # fmt: skip
            if tool_chars:  # over the window by a quarter of what the tool results hold
                chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
                n = (chars + len(json.dumps(body["tools"]))) // 3  # 3 characters a token
                window = n + 1160 + 64 - tool_chars // 12
                return {"status": 400, "body": {"error": {"message": (
                    f"This model's maximum context length is {window} tokens. However, you "
                    f"requested {n + 1160} tokens ({n} in the messages, 1160 in the "
                    "completion). Please reduce the length of the messages or completion."
                ), "type": "invalid_request_error"}}}  # fmt: skip
            return answer(body)
        if turn_of(body) == 0:
            return calls(("search_run", {"pattern": "."}), ("read_steps", {"start": 0, "end": 50}))
        return "not the JSON"

    loopback.responder = responder
    summary = analyse(lake, analyst="agentic", settings=loopback.settings(), where=WHERE)
    finals = [
        b for b in loopback.chat_requests
        if trajectory_of(b) == "f_args" and b.get("tool_choice") == "none"
    ]  # fmt: skip
    assert len(finals) == 2, "the final answer, then once more after the cut"
    cut = [m for m in finals[1]["messages"] if "cut to fit" in (m.get("content") or "")]
    assert [m["role"] for m in cut] == ["tool", "tool"]
    assert summary.n_failed == 0, summary.errors


def test_a_final_answer_the_turns_cannot_be_cut_to_fit_is_asked_of_the_run_rendered_again(
    loopback, lake
):
    """No tool result to cut, and the run itself too long for the window the server reports: the
    run is rendered again for that window and the final answer asked of it alone."""
    from tests.analyse import builders

    long_run = builders.run(
        "long", "shop", "failure",
        [builders.user("order a lamp")]
        + [builders.call("search", {"q": f"lamp {i}"}, "no match " * 40) for i in range(60)]
        + [builders.say("I could not find it.")],
    )  # fmt: skip
    builders.write(lake, [long_run])
    sizes = []

    def responder(body):
        if body.get("tool_choice") != "none":
            return "I think the search terms were wrong."  # prose, not the answer: a final turn
        chars = sum(len(str(m.get("content") or "")) for m in body["messages"])
        sizes.append(chars)
        if len(sizes) == 1:  # the window holds half of what was sent
            n = (chars + len(json.dumps(body["tools"]))) // 3
            return {"status": 400, "body": {"error": {"message": (
                f"This model's maximum context length is {n // 2 + 1224} tokens. However, you "
                f"requested {n + 1160} tokens ({n} in the messages, 1160 in the completion)."
            ), "type": "invalid_request_error"}}}  # fmt: skip
        return answer(body, lessons=[])

    loopback.responder = responder
    summary = analyse(lake, analyst="agentic", settings=loopback.settings())
    assert len(sizes) == 2 and sizes[1] < sizes[0] * 0.7, sizes
    assert summary.n_failed == 0, summary.errors
