"""The single analyst end to end against the loopback server: one structured call per run."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager

import polars as pl
import pytest

from pipeline.analyse.prompts import EVIDENCE, NO_SECTION, NO_SKILL, OVER_LIMIT
from pipeline.analyse.run import analyse
from pipeline.console import Console
from pipeline.lake import Lake
from tests.analyse import builders, scripted
from tests.analyse.builders import call, say, user
from tests.analyse.scripted import answer, lesson, run_text, steps_of, trajectory_of


def extra_runs(n: int) -> list[builders.Run]:
    return [
        builders.run(
            f"new{i}",
            "qa",
            "failure",
            [user("Question: who?"), call("Finish", {"answer": "Z"}, "Answer is INCORRECT")],
            task_id=f"new{i}",
            grader={"correct_answer": "Y"},
        )
        for i in range(n)
    ]


def test_every_run_one_call_then_resume_and_increment(loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = answer
    settings = loopback.settings(concurrency=4, prices={"loopback-model": (1.0, 2.0)})
    first = analyse(lake, settings=settings)  # a model and no analyst named: single
    n = lake.read("trajectories").height
    assert (first.analyst, first.n_analysed, first.n_failed) == ("single", n, 0)
    assert len(loopback.chat_requests) == n
    assert sorted(trajectory_of(b) for b in loopback.chat_requests) == sorted(
        lake.read("trajectories")["trajectory_id"]
    )
    fmt = loopback.chat_requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "LessonsAnswer"
    assert fmt["json_schema"]["schema"]["properties"]["lessons"]["maxItems"] == 3

    rows = lake.read("analyses")
    assert (rows["status"] == "ok").all() and (rows["n_calls"] == 1).all()
    assert (rows["tokens_in"] > 0).all() and (rows["cost_usd"] > 0).all()
    assert first.usage.n_calls == n and first.usage.cost_usd == pytest.approx(
        rows["cost_usd"].sum()
    )
    assert first.usage.tokens_in == rows["tokens_in"].sum()
    lessons = lake.read("lessons")
    assert lessons.height == n and set(lessons["analyst"]) == {"single"}
    assert set(lessons["prompt_version"]) == {first.prompt_version}
    assert first.prompt_version.startswith("single-v2-")
    one = lessons.row(0, named=True)
    assert one["op"] == "add" and one["description"] == "orders with several items"
    assert one["target_section"] == "Placing orders" and one["tool_name"] == "place_order"
    calls = lake.read("llm_calls")
    assert set(calls["prompt_version"]) == {first.prompt_version}
    assert set(calls["stage"]) == {"analyse"} and set(calls["tag"]) == set(rows["trajectory_id"])

    loopback.reset()
    again = analyse(lake, settings=settings)
    assert (again.n_analysed, again.n_skipped) == (0, n)
    assert loopback.chat_requests == [], "a second run makes no model call"

    builders.write(lake, extra_runs(10), part="p1")
    third = analyse(lake, settings=settings)
    assert (third.n_analysed, third.n_skipped) == (10, n)
    assert sorted(trajectory_of(b) for b in loopback.chat_requests) == [
        f"new{i}" for i in range(10)
    ]


def test_the_outcome_picks_the_prompt_and_a_judgement_is_recorded(loopback, lake):
    builders.write(
        lake,
        [
            builders.run("bad", "s", "failure", [user("hi"), say("no")]),
            builders.run("good", "s", "success", [user("hi"), say("yes")]),
            builders.run("open", "s", "unknown", [user("hi"), say("maybe")]),
        ],
    )
    loopback.responder = lambda body: answer(body, outcome="success")
    summary = analyse(lake, settings=loopback.settings())
    by_run = {trajectory_of(b): b for b in loopback.chat_requests}
    assert "This run FAILED" in by_run["bad"]["messages"][0]["content"]
    assert "This run SUCCEEDED" in by_run["good"]["messages"][0]["content"]
    assert scripted.JUDGE in by_run["open"]["messages"][0]["content"]
    judged = by_run["open"]["response_format"]["json_schema"]["schema"]
    assert list(judged["properties"]) == ["judgement", "lessons"]
    assert (
        "judgement" not in by_run["bad"]["response_format"]["json_schema"]["schema"]["properties"]
    )

    rows = {r["trajectory_id"]: r for r in lake.read("analyses").iter_rows(named=True)}
    assert rows["open"]["judged_outcome"] == "success" and rows["open"]["judge_confidence"] == 0.7
    assert rows["open"]["judge_reason"] == "step 1 shows it"
    assert rows["bad"]["judged_outcome"] is None and rows["good"]["judge_reason"] is None
    assert summary.judged == Counter({"success": 1})
    rules = dict(lake.read("lessons").select("trajectory_id", "rule").iter_rows())
    assert rules == {
        "bad": "single:failure",
        "good": "single:success",
        "open": "single:judged_success",
    }


def test_invalid_output_is_repaired_once_then_becomes_an_error_row(loopback, lake):
    scripted.small_lake(lake)
    seen: Counter = Counter()
    bad = {"lessons": [lesson([1], title="short")]}  # a title under 8 characters

    def responder(body):
        tid = trajectory_of(body)
        seen[tid] += 1
        if tid == "f_args" and seen[tid] == 1:
            return bad  # repaired by the second answer
        if tid == "q_seen":
            return "not json at all" if seen[tid] == 1 else bad
        return answer(body)

    loopback.responder = responder
    summary = analyse(lake, settings=loopback.settings(concurrency=4))
    assert seen["f_args"] == 2 and seen["q_seen"] == 2 and seen["s0"] == 1
    repair = next(b for b in loopback.chat_requests if len(b["messages"]) == 4)
    assert "did not match the required JSON schema" in repair["messages"][-1]["content"]
    assert summary.n_failed == 1 and dict(summary.errors)["q_seen"].startswith(
        "model call failed: [invalid_output] invalid output after one repair"
    )
    rows = lake.read("analyses")
    assert rows.filter(pl.col("status") == "error")["trajectory_id"].to_list() == ["q_seen"]
    assert lake.read("lessons").filter(pl.col("trajectory_id") == "f_args").height == 1

    loopback.responder = answer  # the model behaves: the next run retries the error row alone
    loopback.reset()
    retry = analyse(lake, settings=loopback.settings())
    assert (retry.n_analysed, retry.n_failed) == (1, 0) and len(loopback.chat_requests) == 1
    rows = lake.read("analyses")
    assert rows.height == rows["trajectory_id"].n_unique() and (rows["status"] == "ok").all()


def test_lessons_are_checked_against_the_run(loopback, lake):
    scripted.small_lake(lake)

    def responder(body):
        steps, tid = steps_of(body), trajectory_of(body)
        if tid == "f_args":  # one good lesson, one citing a step the run does not have
            return answer(body, [lesson(steps[:1]), lesson([steps[0], 999], title="Invented step")])
        if tid == "q_seen":  # nothing it says is backed by the run
            return answer(body, [lesson([998]), lesson([999], title="Another invented one")])
        if tid == "s0":  # five lessons where two are allowed
            return answer(body, [lesson([s], title=f"Lesson number {s}") for s in steps[:5]])
        return answer(body)

    loopback.responder = responder
    summary = analyse(lake, settings=loopback.settings(concurrency=4), options={"max_lessons": 2})
    rows = {r["trajectory_id"]: r for r in lake.read("analyses").iter_rows(named=True)}
    assert rows["f_args"]["status"] == "ok" and rows["f_args"]["n_lessons"] == 1
    assert json.loads(rows["f_args"]["rejected"]) == {EVIDENCE: 1}
    assert rows["q_seen"]["status"] == "error" and rows["q_seen"]["n_rejected"] == 2
    assert rows["q_seen"]["error"].startswith("every lesson was rejected: 'Pass the exact")
    assert "cites steps [998], not in the run" in rows["q_seen"]["error"]
    assert rows["s0"]["n_lessons"] == 2 and json.loads(rows["s0"]["rejected"]) == {OVER_LIMIT: 3}
    assert rows["s1"]["n_rejected"] == 0 and rows["s1"]["rejected"] is None
    assert summary.rejected == Counter({EVIDENCE: 3, OVER_LIMIT: 3})
    evidence = lake.read("lessons").filter(pl.col("trajectory_id") == "f_args")["evidence_steps"]
    assert evidence.to_list() == [[0]]


def test_deepening_shows_the_skill_and_checks_revisions(loopback, lake, tmp_path):
    builders.write(lake, [builders.run("r", "s", "failure", [user("order 3 A1"), say("done")])])
    skill = tmp_path / "skill"
    skill.mkdir()
    (skill / "SKILL.md").write_text(
        "---\nname: shop\ndescription: d\n---\n# Shop\n\nIntro.\n\n"
        "## Placing orders\n\nAlways confirm the items.\n\n## Refunds\n\nHand refunds off.\n"
    )
    loopback.responder = lambda body: answer(
        body,
        [
            lesson([0], op="revise", target_section="placing  ORDERS"),
            lesson([1], op="remove", target_section="Loyalty points", title="Drop the points rule"),
            lesson([1], target_section="Returns", title="Check the receipt before a return"),
            lesson([0], op="revise", target_section="Gift cards", title="Ask for the card code"),
        ],
    )
    analyse(lake, settings=loopback.settings(), base_skill=skill)
    body = loopback.chat_requests[0]
    assert "## Placing orders\nAlways confirm the items." in run_text(body)
    assert "revise and remove only for a heading the skill has" in body["messages"][0]["content"]
    got = lake.read("lessons").sort("evidence_steps")
    assert sorted(got.select("op", "target_section").rows()) == [
        ("add", "Gift cards"),  # a revise of a section the skill lacks: an add to it
        ("add", "Returns"),
        ("revise", "Placing orders"),
    ]
    assert json.loads(lake.read("analyses")["rejected"][0]) == {NO_SECTION: 1}

    # Without a base skill there is nothing to revise or remove: a revise is an add, a remove
    # is rejected.
    plain = Lake(tmp_path / "plain")
    builders.write(plain, [builders.run("r", "s", "failure", [user("order 3 A1"), say("done")])])
    loopback.reset()
    analyse(plain, settings=loopback.settings())
    assert "There is no skill yet" in run_text(loopback.chat_requests[0])
    assert json.loads(plain.read("analyses")["rejected"][0]) == {NO_SKILL: 1}
    got = plain.read("lessons")
    assert sorted(got["target_section"]) == ["Gift cards", "Returns", "placing  ORDERS"]
    assert set(got["op"]) == {"add"}


def test_model_faults_and_a_spent_budget(loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = answer
    loopback.fail("500", times=100, match=lambda body: trajectory_of(body) == "f_args")
    summary = analyse(lake, settings=loopback.settings(max_retries=1, concurrency=4))
    assert summary.n_failed == 1 and "HTTP 500" in dict(summary.errors)["f_args"]
    assert summary.n_analysed == lake.read("trajectories").height - 1

    fresh = Lake(lake.uri + "-budget")
    scripted.small_lake(fresh)
    loopback.reset()
    tight = loopback.settings(concurrency=1, token_budget=1500)
    spent = analyse(fresh, settings=tight, batch_size=4)
    assert spent.stopped and "budget is spent" in spent.stopped
    done = fresh.read("analyses")
    assert done.height == 4, "the run stops after the batch in flight"
    assert 0 < (done["status"] == "ok").sum() < 4
    assert set(done.filter(pl.col("status") == "error")["error"]) == {
        "model call failed: [budget] budget exhausted"
    }
    assert spent.n_left == fresh.read("trajectories").height - 4

    resumed = analyse(fresh, settings=loopback.settings(concurrency=4))
    assert resumed.n_failed == 0 and resumed.n_skipped == (done["status"] == "ok").sum()
    assert (fresh.read("analyses")["status"] == "ok").all()


def test_a_server_that_refuses_everything_alike_stops_the_map(loopback, lake):
    """A wrong model name answers every request the same way: after `breaker_after` such
    answers in a row no more requests go out, the map stops naming the error, and a rerun
    against a fixed server analyses everything."""
    scripted.small_lake(lake)
    n = lake.read("trajectories").height
    missing = {"status": 404, "body": {"error": {"message": "The model `nope` does not exist"}}}
    loopback.responder = lambda body: missing
    stopped = analyse(
        lake, settings=loopback.settings(concurrency=2, breaker_after=3), batch_size=4
    )
    assert "does not exist" in stopped.stopped and "3 requests in a row" in stopped.stopped
    assert 3 <= len(loopback.chat_requests) <= 4, "the streak, plus the one already in flight"
    rows = lake.read("analyses")
    assert rows.height == 4, "the batch in flight is written; the rest are left"
    assert stopped.n_left == n - 4
    kinds = sorted(e.split("]")[0] + "]" for e in rows["error"])
    assert set(kinds) <= {"model call failed: [not_found]", "model call failed: [breaker]"}

    loopback.reset()
    loopback.responder = answer
    resumed = analyse(lake, settings=loopback.settings(concurrency=2, breaker_after=3))
    assert resumed.n_analysed == n and resumed.stopped is None


def test_a_hung_server_stops_the_map_after_a_few_silences(loopback, lake):
    scripted.small_lake(lake)
    loopback.hang_s = 1.0
    loopback.fail("timeout", times=1000)
    settings = loopback.settings(timeout_s=0.2, timeout_retries=0, concurrency=1, breaker_after=2)
    stopped = analyse(lake, settings=settings, batch_size=4)
    assert "[timeout]" in stopped.stopped and "2 requests in a row" in stopped.stopped
    assert len(loopback.chat_requests) == 2, "one request per silence, and none after"


def test_a_key_the_server_echoes_is_stored_and_printed_nowhere(loopback, lake, capsys):
    scripted.small_lake(lake)
    key = "sk-proj-Zq81x0TESTKEYvalue4242"
    loopback.responder = lambda body: {
        "status": 401,
        "body": {"error": {"message": f"Incorrect API key provided: {key}. Or {key[:8]}****4242"}},
    }
    summary = analyse(lake, settings=loopback.settings(api_key=key, concurrency=1), limit=2)
    assert summary.n_failed == 2
    stored = [
        *lake.read("analyses")["error"].to_list(),
        *lake.read("llm_calls").select("error", "response").to_pandas().to_numpy().ravel(),
        *[str(e) for _, e in summary.errors],
    ]
    assert any("[REDACTED:api-key]" in str(v) for v in stored)
    assert not any(key in str(v) or "sk-proj-" in str(v) for v in stored), stored
    out = capsys.readouterr()
    assert key not in out.out + out.err


class Ticking(Console):
    """A console whose progress bar counts its ticks (a real bar needs a terminal)."""

    def __init__(self):
        super().__init__(0)
        self.ticks: list[int] = []

    @contextmanager
    def progress(self, description, total):
        self.ticks.append(0)
        yield lambda n=1: self.ticks.__setitem__(-1, self.ticks[-1] + n)


def test_the_progress_bar_moves_per_trajectory(loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = answer
    console = Ticking()
    analyse(lake, settings=loopback.settings(), console=console, batch_size=7)
    assert console.ticks == [20], "one bar, one tick per run, none from the model layer's own"
    console = Ticking()
    analyse(lake, analyst="agentic", settings=loopback.settings(), console=console, limit=5)
    assert console.ticks == [5]


def test_the_batch_api(loopback, lake):
    scripted.small_lake(lake)
    loopback.responder = answer
    summary = analyse(lake, settings=loopback.settings(batch=True))
    assert (summary.n_analysed, summary.n_failed) == (20, 0)
    paths = [r["path"] for r in loopback.received if r["path"].startswith("/v1/")]
    paths = [p for p in paths if p != "/v1/models"]  # the endpoint's metadata, read first
    assert paths[:2] == ["/v1/files", "/v1/batches"] and not loopback.chat_requests
    assert lake.read("lessons").height == 20


def test_a_prompt_over_the_window_is_rendered_again_from_the_sizes_the_server_gives(loopback, lake):
    """A server that did not say its window (llama-cpp-python's) says it in its error: the
    run is rendered again to fit, once, and so is every run rendered ahead in the meantime;
    the window is remembered for the endpoint."""
    said = [
        say(f"step {i}: " + "the agent looked up reservation ZFA04Y again " * 5) for i in range(40)
    ]
    runs = [
        builders.run(f"long{k}", "t1", "failure", [user("change my flight"), *said])
        for k in range(4)
    ]
    builders.write(lake, runs)
    limit_chars = 6000  # the loopback's "window": longer prompts are refused as too long

    def respond(body):
        chars = sum(len(m["content"]) for m in body["messages"])
        if chars > limit_chars:
            message = (
                f"This model's maximum context length is {limit_chars // 4} tokens. However, you "
                f"requested {chars // 4 + 60} tokens ({chars // 4} in the messages, 60 in the "
                "completion)."
            )
            return {"status": 400, "body": {"error": {"message": message}}}
        return scripted.answer(body)

    loopback.responder = respond
    summary = analyse(lake, settings=loopback.settings(max_tokens=60, concurrency=1))
    assert summary.n_failed == 0, summary.errors
    sizes = [sum(len(m["content"]) for m in b["messages"]) for b in loopback.chat_requests]
    # the runs rendered ahead before the error told the window are rendered again before sending
    assert len(sizes) == 5 and sizes[0] > limit_chars >= max(sizes[1:])
    endpoint = lake.read("model_endpoints").sort("recorded_at")[-1]
    assert endpoint["context_tokens"].item() == limit_chars // 4


def test_a_grammar_server_is_asked_to_cite_only_the_steps_the_run_has(loopback, lake):
    builders.write(lake, [builders.run("r", "t1", "failure", [user("order 3 A1"), say("done")])])
    loopback.props = {"total_slots": 2, "default_generation_settings": {"n_ctx": 8192}}
    loopback.responder = answer
    summary = analyse(lake, settings=loopback.settings())
    assert summary.n_analysed == 1
    schema = loopback.chat_requests[0]["response_format"]["json_schema"]["schema"]
    cited = schema["$defs"]["LessonAnswer"]["properties"]["evidence_steps"]
    assert cited["items"]["enum"] == [0, 1] and "x-grammar" not in json.dumps(schema)
    assert schema["$defs"]["LessonAnswer"]["properties"]["title"]["minLength"] == 8

    # a server that makes no grammar of the schema gets neither: its answers are checked after
    plain = Lake(lake.uri + "-plain")
    builders.write(plain, [builders.run("r", "t1", "failure", [user("order 3 A1"), say("done")])])
    loopback.reset()
    loopback.props = None
    analyse(plain, settings=loopback.settings())
    schema = loopback.chat_requests[0]["response_format"]["json_schema"]["schema"]
    assert "enum" not in json.dumps(schema["$defs"]["LessonAnswer"]["properties"]["evidence_steps"])
    assert "x-grammar" not in json.dumps(schema) and "minLength" not in json.dumps(schema)
