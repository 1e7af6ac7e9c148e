"""What an agent did after a tool error, and whether it worked.

For every failed call we look ahead for the retry: the next call with the same signature (the
tool, plus the program for shell-like tools: ``bash:pytest``). The strategy is what happened in
between and how the retry differed (``call calculate, then retry with changed payment_methods``,
``retry with a value copied from the error's suggestions``); it worked when the retry succeeded.
No retry: the agent switched to other tools, ended the run with a terminal tool, or stopped.

The pool aggregates these events per (source, signature, error pattern, strategy) to learn which
recoveries work (a retry works when it goes through; a switch to other tools or a final call,
when the run succeeds); a run's own events are then compared with the pool's best.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import polars as pl

from pipeline.analyse.miner.gold import Call
from pipeline.analyse.miner.text import (
    canonical,
    command_head,
    error_line,
    error_pattern,
    main_string,
    string_change,
)

MAX_LOOKAHEAD = 6  # calls after the error within which a retry counts as a reaction to it


def sig_text(signature: str) -> str:
    """A signature as prose: 'bash:pip install' -> 'bash `pip install`'."""
    tool, _, program = signature.partition(":")
    return f"{tool} `{program}`" if program else tool


def _list(sigs: tuple[str, ...]) -> str:
    return ", ".join(sig_text(s) for s in sigs)


@dataclass(frozen=True)
class Strategy:
    """What followed an error, coarse enough to count: whether other calls came before the retry
    is part of it, which ones (`RecoveryEvent.via`) is not, so that 'think, calculate, retry' and
    'calculate, retry' count together."""

    retried: bool
    change: str | None = None  # how the retry differed: 'the same value', 'changed payment_methods'
    after_other: bool = False  # other calls came between the error and the retry
    switched_to: str | None = None  # without a retry: the first other tool called
    ended_with: str | None = None  # terminal tool the run ended with instead of retrying

    def past(self, tool: str, via: tuple[str, ...] = ()) -> str:
        """What the agent did, in the past tense (`tool` and `via` are signatures)."""
        tool = sig_text(tool)
        if self.retried:
            lead = self._lead("called {}, then ", via)
            return f"{lead}retried {tool} {self._with()}"
        if self.ended_with:
            return f"ended the run with {sig_text(self.ended_with)}"
        if self.switched_to:
            return f"gave up on {tool} and called {sig_text(self.switched_to)}"
        return "made no further tool call"

    def imperative(self, tool: str, via: tuple[str, ...] = ()) -> str:
        """The same as advice."""
        tool = sig_text(tool)
        if self.retried:
            lead = self._lead("call {} first, then ", via)
            return f"{lead}retry {tool} {self._with()}"
        if self.ended_with:
            return f"end the run with {sig_text(self.ended_with)}"
        if self.switched_to:
            return f"switch to {sig_text(self.switched_to)}"
        return "stop calling tools"

    def _lead(self, form: str, via: tuple[str, ...]) -> str:
        if not self.after_other:
            return ""
        return form.format(_list(via) if via else "other tools")

    def _with(self) -> str:
        if self.change in (None, "the same value"):
            return "unchanged"
        return f"with {self.change}"


@dataclass
class RecoveryEvent:
    call: Call
    signature: str
    pattern: str
    message: str
    strategy: Strategy
    retry: Call | None
    between: list[Call]
    via: tuple[str, ...]  # distinct signatures called between the error and the retry

    def worked(self, run_succeeded: bool) -> bool:
        """A retry worked when it went through; a switch or a final call, when the run succeeded
        (the only measure there is of a path that leaves the failed tool behind)."""
        if self.strategy.retried:
            return self.retry is not None and not self.retry.is_error
        return run_succeeded and (self.strategy.switched_to or self.strategy.ended_with) is not None


def signature(call: Call, command_like: set[str]) -> str:
    """A call's identity for retries: the tool, and for shell-like tools the program it runs."""
    if call.tool_name in command_like:
        text = main_string(call.args)
        head = command_head(text) if text else ""
        return f"{call.tool_name}:{head}" if head else call.tool_name
    return call.tool_name


def arg_change(failed: Call, retry: Call, command_like: set[str]) -> str:
    """How a retry's arguments differ from the failed call's, in a few words."""
    if failed.canon == retry.canon:
        return "the same value"
    old, new = main_string(failed.args), main_string(retry.args)
    if old is not None and new is not None:
        if failed.tool_name in command_like:
            return "a changed command"
        return string_change(old, new, failed.error_text)
    if isinstance(failed.args, dict) and isinstance(retry.args, dict):
        keys = sorted(
            k
            for k in set(failed.args) | set(retry.args)
            if canonical(failed.args.get(k)) != canonical(retry.args.get(k))
        )
        return "changed " + ", ".join(keys[:3]) + (" (and more)" if len(keys) > 3 else "")
    return "changed arguments"


def events(calls: list[Call], command_like: set[str], terminal: set[str]) -> list[RecoveryEvent]:
    """One event per failed call of a run (calls in step order)."""
    sigs = [signature(c, command_like) for c in calls]
    out = []
    for i, call in enumerate(calls):
        if not call.is_error:
            continue
        retry_at = next(
            (j for j in range(i + 1, min(len(calls), i + 1 + MAX_LOOKAHEAD)) if sigs[j] == sigs[i]),
            None,
        )
        stop = retry_at if retry_at is not None else min(len(calls), i + 1 + MAX_LOOKAHEAD)
        between = calls[i + 1 : stop]
        via = tuple(dict.fromkeys(sigs[k] for k in range(i + 1, stop)))[:3]
        if retry_at is not None:
            retry = calls[retry_at]
            strategy = Strategy(True, arg_change(call, retry, command_like), bool(between))
        else:
            retry = None
            ended = next((c.tool_name for c in between if c.tool_name in terminal), None)
            switched = via[0] if via and not ended else None
            strategy = Strategy(False, switched_to=switched, ended_with=ended)
        out.append(
            RecoveryEvent(
                call=call,
                signature=sigs[i],
                pattern=error_pattern(call.error_text),
                message=error_line(call.error_text),
                strategy=strategy,
                retry=retry,
                between=between,
                via=via if retry is not None else (),
            )
        )
    return out


@dataclass
class StrategyStat:
    n: int = 0
    worked: int = 0
    run_success: int = 0
    runs: set[str] = field(default_factory=set)
    via_worked: Counter = field(default_factory=Counter)  # tool called before a retry that worked

    @property
    def rate(self) -> float:
        """Share that worked, smoothed so that 1 of 1 does not beat 40 of 45."""
        return (self.worked + 1) / (self.n + 2)

    def usual_via(self) -> tuple[str, ...]:
        """Tools called before at least half of the retries that worked."""
        return tuple(
            t for t, n in self.via_worked.most_common() if self.worked and n * 2 >= self.worked
        )


def aggregate(
    by_run: dict[str, list[Call]],
    runs: pl.DataFrame,
    command_like: dict[str, set[str]],
    terminal: dict[str, set[str]],
) -> tuple[dict, dict]:
    """Every run's recovery events counted per (source, signature, pattern) and strategy, and
    the runs each error pattern occurred in."""
    stats: dict[tuple[str, str, str], dict] = defaultdict(lambda: defaultdict(StrategyStat))
    run_sets: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for tid, source, outcome in runs.select("trajectory_id", "source", "outcome").iter_rows():
        calls = by_run.get(tid, [])
        if not any(c.is_error for c in calls):
            continue
        evs = events(calls, command_like.get(source, set()), terminal.get(source, set()))
        for ev in evs:
            key = (source, ev.signature, ev.pattern)
            st = stats[key][ev.strategy]
            st.n += 1
            worked = ev.worked(outcome == "success")
            st.worked += worked
            st.run_success += outcome == "success"
            st.runs.add(tid)
            if worked:
                st.via_worked.update(ev.via)
            run_sets[key].add(tid)
    return stats, run_sets
