"""Rules on the run's own course, read against what worked across the pool.

- error_recovery: after each distinct error (tool signature + error pattern), what the agent did,
  whether it worked, and the recovery that worked best across the pool;
- error_loop: three or more failed calls in a row;
- repeated_call: the same call with the same arguments made three or more times;
- no_final_call: a run that stopped without the terminal call nearly all successful runs end with;
- missing_prerequisite: a write or final call made without the call that successful runs of the
  family always make before it;
- shared_path: a successful run that follows its family's shared solution path (workflow).
"""

from __future__ import annotations

from collections import Counter

from pipeline.analyse.analyst import LessonDraft
from pipeline.analyse.miner.context import RunContext
from pipeline.analyse.miner.pool import max_error_streak
from pipeline.analyse.miner.recovery import events, sig_text
from pipeline.analyse.miner.text import error_pattern, plural, quote, shorten

MAX_ERROR_LESSONS = 3


def _short_pattern(pattern: str) -> str:
    text = pattern.removeprefix("Error: ").removeprefix("error: ")
    return text if len(text) <= 70 else text[:67].rsplit(" ", 1)[0] + " ..."


def _stat_phrase(strategy, what: str, n: int, worked: int) -> str:
    """How one strategy fared across the pool, in words that fit what it measures."""
    if strategy.retried:
        return f"{what}: {worked} of {n} went through"
    if strategy.switched_to or strategy.ended_with:
        return f"{what}: {worked} of {n} runs succeeded"
    return f"{what}: {plural(n, 'time')}"


def _tried(stats: dict, sig: str, best) -> str:
    """The strategies tried after an error and how they fared, the pool's best first, then the
    most tried. Strategies that read the same (they differ only in what the words leave out)
    are one group, their counts summed, so no outcome is printed twice."""
    groups: dict[str, list] = {}  # printed label -> [a strategy, n, worked]
    for strategy, st in stats.items():
        group = groups.setdefault(strategy.past(sig, st.usual_via()), [strategy, 0, 0])
        group[1] += st.n
        group[2] += st.worked
    first = best[0].past(sig, best[1].usual_via()) if best else None
    ranked = sorted(groups.items(), key=lambda kv: (kv[0] != first, -kv[1][1], kv[0]))
    return "; ".join(_stat_phrase(s, what, n, ok) for what, (s, n, ok) in ranked[:3])


def recovery_rule(ctx: RunContext) -> list[LessonDraft]:
    command_like = ctx.pool.command_like.get(ctx.source, set())
    evs = events(ctx.calls, command_like, ctx.terminal)
    firsts = {}
    count: Counter = Counter()
    for ev in evs:
        key = (ev.signature, ev.pattern)
        count[key] += 1
        firsts.setdefault(key, ev)
    out = []
    for key, ev in list(firsts.items())[:MAX_ERROR_LESSONS]:
        sig, pattern = key
        tool = ev.call.tool_name
        name = sig_text(sig)
        stats = ctx.pool.recoveries.get((ctx.source, sig, pattern), {})
        total = sum(st.n for st in stats.values())
        n_runs = len(ctx.pool.recovery_runs.get((ctx.source, sig, pattern), ()))
        best = ctx.pool.best_strategy(ctx.source, sig, pattern)
        mine = stats.get(ev.strategy)
        tried = _tried(stats, sig, best)
        # Scoped to this program and error: a consolidated statement that unites several of
        # them reports its own support beside it.
        pool_note = (
            f" Across the pool, {name} returned this error {plural(total, 'time')} in "
            f"{plural(n_runs, 'run')}" + (f" ({tried})." if tried else ".")
        )
        again = f" (×{count[key]} in this run)" if count[key] > 1 else ""
        what = (
            f"At step {ev.call.step_idx} {name} returned {quote(ev.message, 160)}{again}. "
            f"The agent {ev.strategy.past(sig, ev.via)}"
        )
        after = ev.retry or (ev.between[0] if ev.between else None)
        steps = ev.call.steps + (after.steps if after else [])
        section = ctx.section(tool, pattern)
        desc = f"when {name} fails with {quote(_short_pattern(pattern))}"
        # A run that got through by a path the pool shows rarely works is luck, not a lesson.
        lucky = best is not None and mine is not None and mine.rate * 2 < best[1].rate
        if ev.worked(ctx.outcome == "success") and not lucky:
            out.append(
                ctx.lesson(
                    kind="success_lesson",
                    rule="error_recovery",
                    tool_name=tool,
                    title=f"When {name} fails with {quote(_short_pattern(pattern))}, {ev.strategy.imperative(sig, mine.usual_via() if mine else ev.via)}",
                    description=desc,
                    content=f"{what} and "
                    + (
                        f"it went through at step {ev.retry.step_idx}."
                        if ev.retry is not None
                        else "the run succeeded."
                    )
                    + pool_note,
                    evidence_steps=steps,
                    confidence=mine.rate if mine else 0.5,
                    target_section=section,
                )
            )
        elif best is not None:
            strategy, st = best
            advice = strategy.imperative(sig, st.usual_via())
            outcome = ", which failed again" if ev.retry is not None else ""
            out.append(
                ctx.lesson(
                    kind="failure_lesson",
                    rule="error_recovery",
                    tool_name=tool,
                    title=f"When {name} fails with {quote(_short_pattern(pattern))}, {advice}",
                    description=desc,
                    content=f"{what}{outcome}.{pool_note}",
                    evidence_steps=steps,
                    confidence=st.rate * (0.6 if strategy == ev.strategy else 1.0),
                    target_section=section,
                )
            )
        else:
            out.append(
                ctx.lesson(
                    kind="failure_lesson",
                    rule="error_recovery",
                    tool_name=tool,
                    title=f"Prevent {quote(_short_pattern(pattern))} from {name}: no retry recovered from it",
                    description=desc,
                    content=f"{what}{', which failed again' if ev.retry else ''}.{pool_note} "
                    "No strategy in the pool got past this error, so check its cause before calling.",
                    evidence_steps=steps,
                    confidence=0.5 if total > 1 else 0.35,
                    target_section=section,
                )
            )
    return out


def _rate(k: int, ok: int) -> str:
    return f"{ok} of {k} succeeded" if k else "none in the pool"


def _streak_end(calls, length: int) -> int:
    """Index of the last call of the first run of `length` failed calls in a row."""
    cur = 0
    for i, c in enumerate(calls):
        cur = cur + 1 if c.is_error else 0
        if cur == length:
            return i
    raise ValueError("no such streak")


def loop_rules(ctx: RunContext) -> list[LessonDraft]:
    out = []
    streak = max_error_streak(ctx.calls)
    if streak >= 3:
        end = _streak_end(ctx.calls, streak)
        run = ctx.calls[end - streak + 1 : end + 1]
        tools = list(dict.fromkeys(c.tool_name for c in run))
        patterns = list(dict.fromkeys(error_pattern(c.error_text) for c in run))
        k, ok = ctx.pool.flag_counts(ctx.source, "error_loop")
        after = ctx.calls[end + 1 :]
        then = (
            f"then called {after[0].tool_name} at step {after[0].step_idx}"
            if after
            else "and the run ended there"
        )
        out.append(
            ctx.lesson(
                kind="failure_lesson",
                rule="error_loop",
                tool_name=tools[0],
                title=f"Change approach after two failed {' / '.join(tools)} calls instead of repeating them",
                description="a tool keeps failing",
                content=f"Steps {run[0].step_idx}-{run[-1].result_step_idx or run[-1].step_idx}: "
                f"{streak} {' / '.join(tools)} calls in a row failed "
                f"({'; '.join(quote(p, 90) for p in patterns[:3])}), {then}. "
                f"In the pool, {k} runs had three or more failed calls in a row: {_rate(k, ok)}, against "
                f"{ctx.pool.n_success[ctx.source]} of {ctx.pool.n_runs[ctx.source]} runs overall.",
                evidence_steps=[s for c in run for s in c.steps],
                confidence=0.7,
                target_section=ctx.section(tools[0], *patterns),
            )
        )
    seen: dict[str, list] = {}
    for c in ctx.calls:
        if not c.is_error:
            seen.setdefault(f"{c.tool_name}|{c.canon}", []).append(c)
    repeated = [calls for calls in seen.values() if len(calls) >= 3]
    if repeated and ctx.failed:
        calls = max(repeated, key=len)
        tool = calls[0].tool_name
        k, ok = ctx.pool.flag_counts(ctx.source, "repeated_call")
        out.append(
            ctx.lesson(
                kind="failure_lesson",
                rule="repeated_call",
                tool_name=tool,
                title=f"Reuse the result of {tool} instead of repeating the same call",
                description="a call that was already answered",
                content=f"{tool}({shorten(calls[0].args, 120)}) was called {len(calls)} times with identical "
                f"arguments (steps {', '.join(str(c.step_idx) for c in calls)}) and got the same answer. "
                f"In the pool, {k} runs repeated a call three or more times: {_rate(k, ok)}.",
                evidence_steps=[c.step_idx for c in calls],
                confidence=0.45,
                target_section=ctx.section(tool),
            )
        )
    return out


def final_call_rule(ctx: RunContext) -> list[LessonDraft]:
    """A run that never made the terminal call nearly all successful runs of its family end with."""
    path = ctx.pool.paths.get((ctx.source, ctx.family))
    if not ctx.failed or path is None or any(c.tool_name in ctx.terminal for c in ctx.calls):
        return []
    expected = [t for t, share in path.final_tools.items() if share >= 0.8]
    if not expected:
        return []
    tool = expected[0]
    k, ok = ctx.pool.flag_counts(ctx.source, "no_final_call")
    made = Counter(c.tool_name for c in ctx.calls)
    errors = sum(c.is_error for c in ctx.calls)
    return [
        ctx.lesson(
            kind="failure_cause",
            rule="no_final_call",
            tool_name=tool,
            title=f"Commit to a {tool} call before the step budget runs out",
            description=f"runs that have gathered evidence but not yet called {tool}",
            content=f"The run stopped after {plural(len(ctx.calls), 'tool call')} "
            f"({', '.join(f'{n} {t}' for t, n in made.most_common())}; {plural(errors, 'error')}) without "
            f"calling {tool}, which {path.final_tools[tool]:.0%} of the {path.n_success} successful runs end "
            f"with (median {path.median_calls_success:g} tool calls). In the pool, {k} runs never called "
            f"{tool}: {_rate(k, ok)}.",
            evidence_steps=ctx.last_steps(3),
            confidence=0.85,
            target_section=ctx.section(tool, "answer"),
        )
    ]


def _subsequence_steps(calls, path: list[str]) -> list[int] | None:
    steps, i = [], 0
    for c in calls:
        if i < len(path) and not c.is_error and c.tool_name == path[i]:
            steps.append(c.step_idx)
            i += 1
    return steps if i == len(path) else None


def path_rules(ctx: RunContext) -> list[LessonDraft]:
    path = ctx.pool.paths.get((ctx.source, ctx.family))
    if path is None:
        return []
    label = ctx.family_label()
    out = []
    if ctx.outcome == "success" and len(path.path) >= 2:
        steps = _subsequence_steps(ctx.calls, path.path)
        if steps:
            shares = ", ".join(f"{t} {path.shares[t]:.0%}" for t in path.path)
            fail = (
                f", failed ones {path.median_calls_failure:g}"
                if path.median_calls_failure is not None
                else ""
            )
            out.append(
                ctx.lesson(
                    kind="workflow",
                    rule="shared_path",
                    tool_name=path.path[-1],
                    title=f"Solve {label}tasks with {' -> '.join(path.path)} "
                    f"(median {path.median_calls_success:g} tool calls in successful runs)",
                    description=f"{label}tasks" if label else "every task of this kind",
                    content=f"In the {path.n_success} successful runs of {label or 'these '}tasks, the share "
                    f"that calls each step: {shares} (in this order). Successful runs make a median of "
                    f"{path.median_calls_success:g} tool calls{fail}. This run followed the path at steps "
                    f"{', '.join(map(str, steps))}.",
                    evidence_steps=steps,
                    confidence=min(path.shares[t] for t in path.path),
                    target_section=ctx.section(path.path[-1], *path.path),
                )
            )
    if ctx.failed:
        for anchor, needed in path.before.items():
            first = next((c for c in ctx.calls if c.tool_name == anchor), None)
            if first is None:
                continue
            done = {
                c.tool_name for c in ctx.calls if c.step_idx < first.step_idx and not c.is_error
            }
            for tool, share in needed:
                if tool in done or tool in ctx.terminal:
                    continue
                out.append(
                    ctx.lesson(
                        kind="failure_lesson",
                        rule="missing_prerequisite",
                        tool_name=anchor,
                        title=f"Call {tool} before {anchor}",
                        description=f"before any {anchor} call",
                        content=f"At step {first.step_idx} the agent called {anchor} without a successful "
                        f"{tool} call before it; {share:.0%} of the successful runs of {label or 'these '}tasks "
                        f"that call {anchor} call {tool} first.",
                        evidence_steps=first.steps,
                        confidence=0.6 * share,
                        target_section=ctx.section(anchor, tool),
                    )
                )
                break
    return out
