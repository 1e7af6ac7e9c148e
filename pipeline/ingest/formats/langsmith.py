"""LangSmith run exports: one trajectory per trace (``trace_id``), steps from its run tree.

Shapes followed: LangSmith's "Run (span) data format" reference, the Python SDK's ``Run`` and
``Feedback`` schemas (``langsmith/schemas.py``), LangChain's tracer (``langchain_core/tracers/
core.py``: what chat model, tool and retriever runs keep as inputs and outputs) and the SDK's
OpenAI wrapper (``langsmith/wrappers/_openai.py``). Runs with ``id``, ``name``, ``run_type`` (``llm``, ``tool``, ``chain``, ``retriever``,
...), ``inputs``, ``outputs``, ``error``, ``status``, ``start_time`` / ``end_time`` (ISO text or
epoch milliseconds), ``extra.metadata``, ``tags``, ``trace_id``, ``parent_run_id``,
``dotted_order``, ``reference_example_id``, ``feedback_stats`` (``{key: {"n", "avg", "values"}}``)
and token counts. A file holds them as JSON lines (``client.list_runs`` dumped one per line), a
JSON list, an API answer ``{"runs": [...]}``, or run trees with nested ``child_runs``
(``read_run(..., load_child_runs=True)``); feedback records (``run_id``, ``trace_id``, ``key``,
``score``, ``value``) may sit among them (reading the file: ``langsmith_runs``). The bulk data
export's Parquet files, one row per run, are read too (detected from their columns; decoding
the rows: ``langsmith_bulk``).

Steps walk the tree depth first, children in ``dotted_order`` (else start time, else file
order). An ``llm`` run gives the messages it was sent, then its answer (message shapes: see
``langsmith_messages``); the history each call re-sends is matched against the run so far (as
for OpenTelemetry traces: calls and results by id, other messages by role and text), so every
message is one step. A ``tool`` run gives its call (unless the model's answer holds it: by the
id in its ``ToolMessage`` output, else the oldest open call of that tool) and its result: an
error when the run has an ``error`` or status ``error`` (its text is the error when there is no
output), else the result's text decides. A ``retriever`` run not inside a tool run is a tool call
with its query and the documents' text as result. Chains only hold the tree together.

Run fields, from the root run: task id from ``extra.metadata`` ``task_id`` / ``task`` /
``instance_id``, else ``reference_example_id`` (the dataset example of an evaluation), else a
tag ``task:X`` / ``task_id:X``, else the thread (``session_id``, ``thread_id``,
``conversation_id``); model from the first LLM run; agent: the root run's name. Outcome from the
root run's feedback (records in the file first, then ``feedback_stats``) whose key names an
outcome (a word of it is ``outcome``, ``success``, ``resolved``, ``passed``, ``correct``,
``correctness``, ``accuracy`` or ``reward``, preferred in that order): a boolean or a number
(the mean score when there are several) is the reward, and a reward of 1.0 or more is a success
(so 0/1 scores read as failure/success); a categorical value reads as words (pass / fail, ...).
Without such feedback a root run that failed (an ``error``, or status ``error``: the agent
raised) is a failure, and otherwise the outcome is unknown (``--labels`` by trace id can give it).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator
from typing import Any

from pipeline.ingest.formats import langsmith_bulk as lsb
from pipeline.ingest.formats import langsmith_messages as lsm
from pipeline.ingest.formats import langsmith_runs as lsr
from pipeline.ingest.formats.otel import Transcript
from pipeline.ingest.formats.otel_messages import Atom, as_str, parsed
from pipeline.ingest.formats.otel_spans import nanos
from pipeline.ingest.rawfile import RawFile
from pipeline.ingest.record import BadRecord, Run, as_reward, normalize_outcome

NAME = "langsmith"
TASK_KEYS = ("task_id", "task", "instance_id")
THREAD_KEYS = ("session_id", "thread_id", "conversation_id")
OUTCOME_WORDS = ("outcome", "success", "successful", "resolved", "passed", "pass", "correct",
                 "correctness", "accuracy", "reward")  # fmt: skip
_WORD = re.compile(r"[^a-z0-9]+")
_TASK_TAG = re.compile(r"^task(?:_id)?[:=](.+)$")


def sniff(sample: list[Any], raw: RawFile) -> bool:
    if raw.is_parquet:
        return lsb.is_export(raw)
    # Runs (or feedback beside them) are at least half the sample: other records are reported
    # as bad ones when read, so a file with some damaged lines is still read, not ignored.
    hits = sum(lsr.is_run(r) or lsr.listed_runs(r) for r in sample)
    known = hits + sum(lsr.is_feedback(r) for r in sample)
    return hits > 0 and 2 * known >= len(sample)


def read(raw: RawFile, ctx) -> Iterator[Run | BadRecord]:
    found: list[lsr.LsRun] = []
    feedback: list[dict] = []
    for where, value in lsr.records(raw):
        if isinstance(value, BadRecord):
            yield value
        elif lsr.is_feedback(value):
            feedback.append(value)
        elif lsr.listed_runs(value):
            for i, item in enumerate(value["runs"]):
                yield from lsr.flatten(item, f"{where} runs[{i}]", None, found)
            feedback += [f for f in value.get("feedback") or [] if lsr.is_feedback(f)]
        else:
            yield from lsr.flatten(value, where, None, found)
    traces = lsr.traces(found)
    scores, orphans = _feedback_by_trace(feedback, traces)
    if orphans:
        yield BadRecord("feedback", f"{orphans} feedback record(s) for runs not in this file: "
                        "not read (export the runs with their feedback)")  # fmt: skip
    for trace_id, (tops, members) in traces.items():
        record = f"trace {trace_id} ({tops[0].record})"
        try:
            run, problems = build_run(trace_id, tops, members, scores.get(trace_id, []), ctx)
        except ValueError as exc:
            yield BadRecord(record, str(exc))
            continue
        yield from (BadRecord(record, p) for p in problems)
        if not run.steps:
            yield BadRecord(record, f"trace without LLM messages or tool runs: its "
                            f"{len(members)} run(s) ({_types(members)}) hold no steps")  # fmt: skip
            continue
        run.record = record
        yield run


def build_run(
    trace_id: str, tops: list[lsr.LsRun], members: list[lsr.LsRun], feedback: list[dict], ctx
) -> tuple[Run, list[str]]:
    """The trajectory of one trace and the problems met in its runs' messages."""
    t = Transcript()
    problems: list[str] = []
    seen: set[str] = set()

    def walk(run: lsr.LsRun, in_tool: bool) -> None:
        if run.id in seen:  # parent ids that loop back
            return
        seen.add(run.id)
        where = f"run {run.id} ({run.name})"
        is_tool = run.run_type == "tool" or (run.run_type == "retriever" and not in_tool)
        if run.run_type in ("llm", "chat_model"):
            t.absorb(lsm.input_atoms(run.part("inputs"), where, problems), fresh=False)
        elif is_tool:
            call = t.tool_call(_call(run))
        for child in lsr.in_order(run.children):
            walk(child, in_tool or is_tool)
        if run.run_type in ("llm", "chat_model"):
            t.absorb(lsm.output_atoms(run.part("outputs"), where, problems), fresh=True)
        elif is_tool:
            result = _result(run, call)
            if result.text is not None or result.is_error:  # else the next call's history has it
                t.tool_result(call, result)

    for run in [*tops, *members]:  # members no top reaches: parent ids that loop
        walk(run, False)
    root = tops[0]
    llms = [r for r in sorted(members, key=lambda r: (r.start or 0, r.order))
            if r.run_type in ("llm", "chat_model")]  # fmt: skip
    models = [m for m in map(_model, llms) if m]
    metadata = _obj(root.part("extra").get("metadata"))
    outcome, reward, scores = _outcome(feedback, root.part("feedback_stats"))
    if outcome is None and _failed(root):  # the agent raised, and no feedback judged the run
        outcome = "failure"
    meta: dict[str, Any] = {"runs": len(members), "root_run": root.name}
    for key in ("session_name", "session_id", "reference_example_id", "tags"):
        if root.data.get(key):
            meta[key] = root.data[key]
    own = {k: v for k, v in metadata.items() if not k.startswith("ls_")}
    if own:
        meta["metadata"] = own
    if len(set(models)) > 1:
        meta["models"] = sorted(set(models))
    usage = [_usage(r) for r in llms]
    for i, key in enumerate(("input_tokens", "output_tokens")):
        counts = [u[i] for u in usage if u[i] is not None]
        if counts:
            meta.setdefault("usage", {})[key] = sum(counts)
    try:
        end = nanos(root.data.get("end_time"), "end_time")
    except ValueError:
        end = None
    if root.start is not None and end is not None:
        meta["duration_ms"] = round((end - root.start) / 1e6, 3)
    if root.data.get("error"):
        meta["error"] = str(root.data["error"])[:2000]
    if scores:
        meta["feedback"] = scores
    task = _task(metadata, root)
    return Run(
        record=root.record,
        steps=t.b.steps,
        native_id=trace_id,
        task_id=task,
        model=models[0] if models else ctx.model,
        agent=root.name,
        outcome=outcome,
        reward=reward,
        meta=meta,
    ), problems


def _call(run: lsr.LsRun) -> Atom:
    inputs = run.part("inputs")
    args: Any = inputs
    if set(inputs) == {"input"}:  # LangChain keeps the tool input as text (a Python repr)
        args = _args(inputs["input"])
    output = lsm.tool_message(run.part("outputs").get("output"))
    extra = run.part("extra")
    call_id = as_str((output or {}).get("tool_call_id") or extra.get("tool_call_id")
                   or _obj(extra.get("metadata")).get("tool_call_id"))  # fmt: skip
    return Atom("call", "assistant", None, call_id, run.name, args)


def _result(run: lsr.LsRun, call: Atom) -> Atom:
    outputs = run.part("outputs")
    error = run.data.get("error")
    failed = _failed(run)
    if run.run_type == "retriever":
        docs = outputs.get("documents")
        text = (
            "\n\n".join(map(_document, docs)) if isinstance(docs, list) else lsm.step_text(outputs)
        )
    else:
        value = outputs.get("output", outputs or None)
        message = lsm.tool_message(value)
        if message is not None:
            failed = failed or message.get("status") == "error"
            value = message.get("content")
        text = lsm.step_text(value)
    if text is None and failed:
        text = str(error) if error else "error"
    return Atom("result", "tool", text, call.call_id, call.name, is_error=True if failed else None)


def _failed(run: lsr.LsRun) -> bool:
    return bool(run.data.get("error")) or str(run.data.get("status")).lower() == "error"


def _args(value: Any) -> Any:
    value = parsed(value)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _document(doc: Any) -> str:
    if isinstance(doc, dict):
        fields = doc.get("kwargs") if isinstance(doc.get("kwargs"), dict) else doc
        if isinstance(fields.get("page_content"), str):
            return fields["page_content"]
    return lsm.step_text(doc) or ""


def _feedback_by_trace(feedback: list[dict], traces: dict) -> tuple[dict[str, list[dict]], int]:
    """Feedback on each trace's root run (or on the trace as a whole), and how many records
    are for runs the file does not hold. Feedback on inner runs (one model call, one tool)
    does not judge the run as a whole: it is passed over."""
    roots = {tops[0].id: trace_id for trace_id, (tops, _) in traces.items()}
    inner = {r.id for _, members in traces.values() for r in members}
    out: dict[str, list[dict]] = {}
    orphans = 0
    for f in feedback:
        run_id, trace_id = as_str(f.get("run_id")), as_str(f.get("trace_id"))
        target = roots.get(run_id) if run_id else trace_id
        if target in traces:
            out.setdefault(target, []).append(f)
        elif run_id not in inner:
            orphans += 1
    return out, orphans


def _outcome(feedback: list[dict], stats: dict) -> tuple[str | None, float | None, dict]:
    """(outcome, reward, every feedback key's value) from the root run's feedback."""
    scores: dict[str, Any] = {}
    for f in feedback:  # records: the mean of a key's scores, else its latest value
        key = str(f["key"])
        same = [g for g in feedback if str(g["key"]) == key]
        numbers = [as_reward(g["score"]) for g in same if g.get("score") is not None]
        if len(numbers) == 1 and isinstance(same[0].get("score"), bool):
            scores[key] = same[0]["score"]
        elif numbers:
            scores[key] = sum(numbers) / len(numbers)
        else:
            scores[key] = next((g["value"] for g in reversed(same) if g.get("value") is not None),
                               None)  # fmt: skip
    for key, stat in stats.items():
        if key in scores or not isinstance(stat, dict):
            scores.setdefault(key, stat)
            continue
        values = stat.get("values") if isinstance(stat.get("values"), dict) else {}
        scores[key] = stat.get("avg") if stat.get("avg") is not None else (
            next(iter(values)) if len(values) == 1 else None)  # fmt: skip
    ranked = sorted(
        (OUTCOME_WORDS.index(w), key)
        for key in scores
        if (w := next((w for w in OUTCOME_WORDS if w in _WORD.split(key.lower())), None))
    )
    for _, key in ranked:
        value = scores[key]
        if isinstance(value, bool | int | float):
            reward = as_reward(value)
            return normalize_outcome(reward), reward, scores
        try:
            outcome = normalize_outcome(value)
        except ValueError:
            continue  # a free-text value says nothing of the outcome: try the next key
        if outcome is not None:
            return outcome, None, scores
    return None, None, scores


def _task(metadata: dict, root: lsr.LsRun) -> str | None:
    for key in TASK_KEYS:
        if metadata.get(key) not in (None, ""):
            return str(metadata[key])
    if root.data.get("reference_example_id"):
        return str(root.data["reference_example_id"])
    tags = root.data.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        m = _TASK_TAG.match(str(tag))
        if m:
            return m.group(1)
    return next((str(metadata[k]) for k in THREAD_KEYS if metadata.get(k) not in (None, "")), None)


def _model(run: lsr.LsRun) -> str | None:
    outputs, extra = run.part("outputs"), run.part("extra")
    generations = outputs.get("generations")
    message = {}
    if isinstance(generations, list) and generations and isinstance(generations[0], list):
        first = generations[0][0] if generations[0] else None
        message = lsm.fields_of(_obj(first).get("message"))
    found = [
        _obj(outputs.get("llm_output")).get("model_name"),
        _obj(message.get("response_metadata")).get("model_name"),
        _obj(message.get("response_metadata")).get("model"),
        outputs.get("model"),
        _obj(extra.get("metadata")).get("ls_model_name"),
        _obj(extra.get("invocation_params")).get("model"),
        _obj(extra.get("invocation_params")).get("model_name"),
        run.part("inputs").get("model"),
    ]
    return next((str(m) for m in found if isinstance(m, str) and m), None)


def _usage(run: lsr.LsRun) -> tuple[int | None, int | None]:
    data, outputs = run.data, run.part("outputs")
    usage = _obj(outputs.get("usage_metadata"))
    return (  # the model's own count first: the run's fields may be LangSmith's estimate
        _int(usage.get("input_tokens"), data.get("prompt_tokens")),
        _int(usage.get("output_tokens"), data.get("completion_tokens")),
    )


def _int(*values: Any) -> int | None:
    numbers = (v for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    return next((int(v) for v in numbers if math.isfinite(v)), None)


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _types(runs: list[lsr.LsRun]) -> str:
    return ", ".join(sorted({r.run_type for r in runs}))
