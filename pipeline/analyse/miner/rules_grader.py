"""Rules that judge a failed run by the grader's view: gold actions, expected outputs, answers.

- gold_wrong_args / gold_missing_call / gold_failed_call / gold_extra_call / gold_order: the
  run's write calls against the gold actions (see `gold.py`), with counts over the pool;
- handoff_instead_of_write: the run ended with a terminal tool (a hand-off) the gold list does not
  hold while a gold write was left undone;
- expected_output_missing: a value the grader expected the agent to say never appears in its
  messages;
- wrong_final_answer / answer_seen_not_used: the final answer against the correct answer, and
  whether the agent had already read the correct answer in a tool result.
"""

from __future__ import annotations

from pipeline.analyse.analyst import LessonDraft
from pipeline.analyse.miner.answers import CLASSES, classify, find_in, normalise_answer
from pipeline.analyse.miner.context import RunContext
from pipeline.analyse.miner.gold import ArgDiff, GoldFinding
from pipeline.analyse.miner.text import error_line, main_string, plural, quote, shorten

MAX_DIFFS = 3


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _diff_title(tool: str, d: ArgDiff) -> str:
    name = d.pattern or "the arguments"
    listed = name.removesuffix("[]")
    if d.kind == "missing" and name.endswith("[]"):
        return f"Include every {listed} entry the task requires in {tool}"
    if d.kind == "extra" and name.endswith("[]"):
        return f"Do not add {listed} entries the task did not ask for to {tool}"
    if d.kind == "missing":
        return f"Pass {name} to {tool}: the task requires it"
    if d.kind == "extra":
        return f"Leave {name} out of {tool}: the task does not set it"
    if name.endswith("[]"):
        return f"Pass the {listed} entries the task calls for to {tool}"
    if _is_number(d.given) and _is_number(d.expected):
        return f"Compute {name} for {tool} exactly before calling it"
    return f"Pass the {name} the task calls for to {tool}, not another one"


def _diff_sentence(d: ArgDiff) -> str:
    if d.kind == "missing":
        return f"{d.path} was missing (expected {quote(d.expected)})"
    if d.kind == "extra":
        return f"{d.path} = {quote(d.given)} was not expected"
    return f"{d.path} was {quote(d.given)} where the gold action has {quote(d.expected)}"


def _pool_note(ctx: RunContext, f: GoldFinding, pattern: str, what: str) -> str:
    k = ctx.pool.diff_counts[ctx.source, f.tool, f.kind, pattern]
    m = ctx.pool.gold_tool_runs[ctx.source, f.tool]
    if k <= 1:
        return f" This is the only failed run in the pool with {what} ({m} runs had {f.tool} among their gold actions)."
    return f" Across the pool, {k} failed runs had {what} ({m} runs had {f.tool} among their gold actions)."


def gold_rules(ctx: RunContext) -> list[LessonDraft]:
    if not ctx.failed or not ctx.findings:
        return []
    out: list[LessonDraft] = []
    for f in ctx.findings:
        section = ctx.section(f.tool)
        desc = f"tasks whose gold actions include {f.tool}"
        if f.kind == "wrong_args":
            for d in f.diffs[:MAX_DIFFS]:
                out.append(
                    ctx.lesson(
                        kind="failure_cause",
                        rule="gold_wrong_args",
                        tool_name=f.tool,
                        title=_diff_title(f.tool, d),
                        description=desc,
                        content=f"At step {f.call.step_idx} the agent called {f.tool} and "
                        f"{_diff_sentence(d)}."
                        + _pool_note(
                            ctx, f, d.pattern, f"a wrong {d.pattern or 'argument'} in {f.tool}"
                        ),
                        evidence_steps=f.call.steps,
                        confidence=0.9,
                        target_section=section,
                    )
                )
        elif f.kind == "missing":
            end = ctx.calls[-1] if ctx.calls else None
            ended = (
                f"; it ended with {end.tool_name} at step {end.step_idx}"
                if end and end.tool_name in ctx.terminal
                else (
                    f"; its last tool call was {end.tool_name} at step {end.step_idx}"
                    if end
                    else ""
                )
            )
            made = [c for c in ctx.calls if c.tool_name == f.tool and not c.is_error]
            wanted = sum(1 for g in ctx.gold or [] if g.name == f.tool)
            never = (
                f"made {plural(len(made), f'{f.tool} call')} where the task needed {wanted}, "
                "and none matched this one"
                if made
                else f"never called {f.tool}"
            )
            out.append(
                ctx.lesson(
                    kind="failure_cause",
                    rule="gold_missing_call",
                    tool_name=f.tool,
                    title=f"Make every {f.tool} call the task requires before ending the run",
                    description=desc,
                    content=f"The grader expected {f.tool}({shorten(f.gold.kwargs, 160)}) but the run "
                    f"{never}{ended}."
                    + _pool_note(ctx, f, "", f"a required {f.tool} call missing"),
                    evidence_steps=ctx.last_steps(),
                    confidence=0.85,
                    target_section=section,
                )
            )
        elif f.kind == "failed":
            errors = sorted({error_line(a.error_text) for a in f.attempts})
            diffs = "; ".join(_diff_sentence(d) for d in f.diffs[:MAX_DIFFS])
            out.append(
                ctx.lesson(
                    kind="failure_cause",
                    rule="gold_failed_call",
                    tool_name=f.tool,
                    title=f"Resolve the {f.tool} error and complete the call instead of leaving it undone",
                    description=desc,
                    content=f"Every {f.tool} attempt failed ({plural(len(f.attempts), 'attempt')}, at steps "
                    f"{', '.join(str(a.step_idx) for a in f.attempts)}) with "
                    f"{'; '.join(quote(e, 120) for e in errors)}, so the required change was never made."
                    + (
                        f" Against the gold action, the closest attempt differed: {diffs}."
                        if diffs
                        else ""
                    )
                    + _pool_note(ctx, f, "", f"every {f.tool} attempt fail"),
                    evidence_steps=[s for a in f.attempts for s in a.steps],
                    confidence=0.85,
                    target_section=section,
                )
            )
        elif f.kind == "extra":
            writes = ctx.pool.write_tools.get(ctx.source, set())
            wanted = [
                f"{g.name}({shorten(g.kwargs, 60)})" for g in ctx.gold or [] if g.name in writes
            ]
            out.append(
                ctx.lesson(
                    kind="failure_cause",
                    rule="gold_extra_call",
                    tool_name=f.tool,
                    title=f"Call {f.tool} only when the task requires it: check the conditions first",
                    description=f"requests that might lead to {f.tool}",
                    content=f"At step {f.call.step_idx} the agent called {f.tool}({shorten(f.call.args, 160)}), "
                    "which is not among the grader's gold actions ("
                    + (
                        f"the task's changes were {'; '.join(wanted[:3])}"
                        if wanted
                        else "the task needed no change at all"
                    )
                    + ")."
                    + _pool_note(ctx, f, "", f"an unrequested {f.tool} call"),
                    evidence_steps=f.call.steps,
                    confidence=0.75,
                    target_section=section,
                )
            )
        elif f.kind == "order":
            names = [a.tool_name for a in f.attempts]
            out.append(
                ctx.lesson(
                    kind="failure_lesson",
                    rule="gold_order",
                    tool_name=f.tool,
                    title=f"Make the {' and '.join(dict.fromkeys(names))} calls in the order the task lists them",
                    content=f"The run made the right calls in another order than the gold actions "
                    f"(steps {', '.join(str(a.step_idx) for a in f.attempts)}).",
                    evidence_steps=[a.step_idx for a in f.attempts],
                    confidence=0.35,
                    target_section=section,
                )
            )
    return out


def handoff_rule(ctx: RunContext) -> list[LessonDraft]:
    """A failed run that ended with a hand-off the gold list does not hold, a gold write undone."""
    if not ctx.failed or ctx.gold is None:
        return []
    undone = [f for f in ctx.findings if f.kind in ("missing", "failed")]
    gold_names = {g.name for g in ctx.gold}
    finals = [c for c in ctx.calls if c.tool_name in ctx.terminal and c.tool_name not in gold_names]
    if not undone or not finals:
        return []
    call = finals[-1]
    k, ok = ctx.pool.flag_counts(ctx.source, f"handoff_instead_of_write:{call.tool_name}")
    n, n_ok = ctx.pool.flag_counts(ctx.source, f"final:{call.tool_name}")
    todo = ", ".join(dict.fromkeys(f.tool for f in undone))
    return [
        ctx.lesson(
            kind="failure_cause",
            rule="handoff_instead_of_write",
            tool_name=call.tool_name,
            title=f"Complete {todo} yourself instead of handing off with {call.tool_name}",
            description="requests that the available tools can complete",
            content=f"At step {call.step_idx} the agent called {call.tool_name}"
            f"({shorten(call.args, 140)}) although the task was within reach: the grader expected "
            f"{todo}, which the run never completed. In the pool, {n} runs called "
            f"{call.tool_name} ({n_ok} of them succeeded, on tasks that needed no other change); "
            f"{k} failed runs handed off while a required change was undone.",
            evidence_steps=call.steps,
            confidence=0.85,
            target_section=ctx.section(call.tool_name, todo),
        )
    ]


def outputs_rule(ctx: RunContext) -> list[LessonDraft]:
    """Values the grader expected the agent to say that none of its messages contains."""
    if not ctx.failed or not ctx.expected_outputs:
        return []
    said = [(s, c) for s, r, c in ctx.messages if r == "assistant"]
    text = normalise_answer(" ".join(c for _, c in said))
    missing = [o for o in ctx.expected_outputs if normalise_answer(o) not in text]
    if not missing:
        return []
    last = said[-1][0] if said else None
    return [
        ctx.lesson(
            kind="failure_cause",
            rule="expected_output_missing",
            title="Tell the user the exact value they asked for, computed from the tool results",
            description="requests that ask for a figure or a fact",
            content=f"The grader expected the agent to say {', '.join(quote(o) for o in missing)}; "
            f"none of its {plural(len(said), 'message')} did."
            + (f" Its last message (step {last}) was: {quote(said[-1][1], 160)}." if said else ""),
            evidence_steps=[last] if last is not None else ctx.last_steps(),
            confidence=0.8,
            target_section=ctx.section(None, "answer reply value"),
        )
    ]


_ANSWER_TITLES = {
    "extra_words": "Answer with the exact entity only: extra words make an exact-match answer wrong",
    "fragment": "Give the complete answer, not a fragment of it",
    "overlap": "Use the exact wording of the source for the answer, not a paraphrase",
    "different": "Check the answer against the retrieved text before finishing",
}


def answer_rule(ctx: RunContext) -> list[LessonDraft]:
    """A wrong final answer against the correct one; and the correct one already read."""
    if not ctx.failed or not ctx.correct_answer:
        return []
    finals = [c for c in ctx.calls if c.tool_name in ctx.terminal]
    answer = main_string(finals[-1].args) if finals else None
    if answer is None:
        return []
    cls = classify(answer, ctx.correct_answer)
    if cls is None:
        return []
    call = finals[-1]
    k, _ = ctx.pool.flag_counts(ctx.source, f"answer:{cls}")
    n, n_ok = ctx.pool.flag_counts(ctx.source, "answered")
    out = [
        ctx.lesson(
            kind="failure_cause",
            rule="wrong_final_answer",
            tool_name=call.tool_name,
            title=_ANSWER_TITLES[cls],
            description=f"the final {call.tool_name} answer",
            content=f"At step {call.step_idx} the agent answered {quote(answer)}; the correct answer "
            f"is {quote(ctx.correct_answer)}: {CLASSES[cls]}. In the pool, {k} of {n} answered runs "
            f"failed this way ({n_ok} answered correctly).",
            evidence_steps=call.steps,
            confidence=0.9,
            target_section=ctx.section(call.tool_name, "answer"),
        )
    ]
    # Only when the answer missed the right one outright: a longer or shorter form of it is
    # already the lesson above, and short answers ("yes", "1985") turn up in any text.
    norm = normalise_answer(ctx.correct_answer)
    if cls not in ("different", "overlap") or len(norm) < 4 or norm in ("yes", "no"):
        return out
    seen_at = find_in(
        [
            (c.result_step_idx, ctx.results.get(c.step_idx, ""))
            for c in ctx.calls
            if c.result_step_idx is not None and c is not call
        ],
        ctx.correct_answer,
    )
    if seen_at is not None:
        source_call = next(c for c in ctx.calls if c.result_step_idx == seen_at)
        out.append(
            ctx.lesson(
                kind="failure_lesson",
                rule="answer_seen_not_used",
                tool_name=source_call.tool_name,
                title="Answer from the evidence already retrieved: re-read the results before answering",
                description="multi-step questions where an earlier result holds the answer",
                content=f"The correct answer {quote(ctx.correct_answer)} was in the {source_call.tool_name} result "
                f"at step {seen_at} ({source_call.tool_name}({shorten(source_call.args, 80)})), yet the agent "
                f"answered {quote(answer)} at step {call.step_idx}.",
                evidence_steps=[source_call.step_idx, seen_at, *call.steps],
                confidence=0.8,
                target_section=ctx.section(call.tool_name, "answer evidence"),
            )
        )
    return out
