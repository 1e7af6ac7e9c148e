"""No planted secret gets out: every shape of `tests/secret_corpus.py`, planted in every place a
run holds text (user message, assistant text, call arguments, tool results, the run's metadata,
the grader's view, the task id), goes through the miner, the single and the agentic analyst and a
model consolidation against the loopback server, and the report. Models that echo what they were
sent, and echo the secrets themselves, are played by the responders below. None of the planted
values may be in a request the server received, the lake's lessons, the skill folder (file names
included) or the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.analyse.run import analyse
from pipeline.consolidate.run import consolidate
from pipeline.report.html import write_report
from tests.analyse import builders
from tests.analyse.builders import call, say, user
from tests.analyse.scripted import run_text, steps_of
from tests.consolidate import scripted as consolidation
from tests.secret_corpus import PLANTED


def flat(text: str) -> str:
    return " ".join(text.split())


ALL_TEXT = "\n".join(p.text for p in PLANTED)


def corpus_runs() -> list[builders.Run]:
    steps = [user(f"Please deploy the shop. Here is everything you need:\n{ALL_TEXT}")]
    for k, p in enumerate(PLANTED):
        args = {"config": p.text, "note": f"step {k}"}
        if p.text.startswith("{"):
            args = json.loads(p.text)
        steps.append(
            call(f"deploy_{k % 3}", args, f"Error: deploy rejected the request: {p.text}",
                 error=True, said=p.text)
        )  # fmt: skip
        steps.append(say(f"That failed; retrying with {p.text}"))
    steps.append(call("deploy_0", {"config": "ok"}, "deployed"))
    meta = {"env": {p.shape: p.text for p in PLANTED}, "notes": ALL_TEXT}
    grader = {
        "instruction": f"You are the operator. {ALL_TEXT}",
        "actions": [{"name": "deploy_0", "kwargs": {"config": p.text}} for p in PLANTED[:5]],
    }
    return [
        builders.run(f"run{i}", "shop", outcome, steps, task_id=f"deploy {PLANTED[3].value}",
                     grader=grader, extra_meta=meta)
        for i, outcome in enumerate(["failure", "failure", "failure", "success"])
    ]  # fmt: skip


def echoing_lessons(body: dict) -> list[dict]:
    """Lessons that repeat what the model was sent and the planted secrets themselves."""
    sent = run_text(body)
    evidence = steps_of(body)[:2]
    out = []
    for i in range(3):
        group = PLANTED[i::3]
        out.append({
            "kind": "failure_cause",
            "title": flat(" ".join(p.text for p in group))[:290],
            "description": flat(group[0].text),
            "content": f"{sent[:3000]}\n{ALL_TEXT}",
            "target_section": flat(group[1].text)[:120],
            "op": "add",
            "evidence_steps": evidence,
            "tool_name": flat(group[2].text)[:60],
            "confidence": 0.8,
        })  # fmt: skip
    return out


def single_turn(body: dict) -> dict:
    return {"lessons": echoing_lessons(body)}


def agentic_turn(body: dict) -> dict:
    if sum(m["role"] == "assistant" for m in body["messages"]):
        return {"lessons": echoing_lessons(body)}
    specs = [
        ("read_steps", {"start": 0, "end": 40}),
        ("search_run", {"pattern": "key|password|token|secret|auth"}),
        ("query_pool", {"sql": "select result_content, tool_args, meta from tool_calls "
                               "join trajectories using (trajectory_id)"}),
        ("successful_run", {}),
        ("compare_gold", {}),
        ("read_skill", {"section": "Deploying"}),
    ]  # fmt: skip
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in specs]}


def echoing_consolidation(body: dict) -> dict:
    """The scripted consolidation model, with a planted secret in every title and section it
    writes."""
    answer = consolidation.answer(body)
    n = len(json.dumps(body)) % len(PLANTED)
    if consolidation.kind(body) == "summary":
        answer["title"] = flat(f"{answer['title']} {PLANTED[n].text}")[:290]
        answer["content"] = f"{answer['content']}\n{ALL_TEXT}"
    for k, st in enumerate(answer.get("statements", [])):
        st["title"] = flat(f"{st['title']} {PLANTED[(n + k) % len(PLANTED)].text}")[:290]
        st["section"] = flat(PLANTED[(n + k + 1) % len(PLANTED)].text)[:100]
        st["detail"] = ALL_TEXT
    return consolidation.reply(answer)


def leaks(text: str) -> list[str]:
    return [p.shape for p in PLANTED if p.value in text]


def test_no_planted_secret_reaches_the_model_the_lessons_the_skill_or_the_report(
    lake, loopback, tmp_path
):
    builders.write(lake, corpus_runs())
    base = tmp_path / "base" / "SKILL.md"
    base.parent.mkdir()
    base.write_text(f"# Shop\n\n## Deploying\n\nThe deploy key: {PLANTED[17].text}\n")

    assert analyse(lake, analyst="miner").n_failed == 0
    loopback.responder = single_turn
    assert (
        analyse(lake, analyst="single", settings=loopback.settings(), base_skill=base).n_failed == 0
    )
    loopback.responder = agentic_turn
    assert (
        analyse(lake, analyst="agentic", settings=loopback.settings(), base_skill=base).n_failed
        == 0
    )
    loopback.responder = echoing_consolidation
    out = tmp_path / "shop-skill"
    summary = consolidate(lake, out_dir=out, settings=loopback.settings())
    report = write_report(lake, tmp_path / "report.html")

    sent = json.dumps([r["body"] for r in loopback.received])
    assert "[REDACTED:" in sent
    assert leaks(sent) == [], "sent to the model server"

    lessons = lake.read("lessons")
    assert lessons.height > 0
    assert set(lessons["analyst"]) == {"miner", "single", "agentic"}
    text_columns = [c for c, t in lessons.schema.items() if t == pl.String]
    assert leaks(lessons.select(text_columns).write_csv()) == [], "in the lake's lessons"
    analyses = lake.read("analyses")
    assert leaks(analyses.write_csv()) == [], "in the lake's analyses"

    files = sorted(p for p in Path(summary.out_dir).rglob("*") if p.is_file())
    assert any(p.parent.name == "references" for p in files)
    skill = "\n".join(f"{p.relative_to(out)}\n{p.read_text(encoding='utf-8')}" for p in files)
    assert "[REDACTED:" in skill
    assert leaks(skill) == [], "in the skill folder"

    assert leaks(report.read_text(encoding="utf-8")) == [], "in the report"
