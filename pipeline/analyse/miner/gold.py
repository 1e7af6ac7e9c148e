"""Diff an agent's tool calls against the grader's gold actions.

`diff_args` compares two argument values recursively and names each difference by its path
(``payment_methods[credit_card_4421486].amount``): dicts key by key, lists of objects matched on
the field that identifies their elements best (learned from the values: the field whose values
are unique and shared most between the two lists, such as ``flight_number`` or ``payment_id``),
lists of plain values as multisets, numbers by value (250 == 250.0).

`gold_diff` matches a run's calls to its gold actions, ignoring tools the pool showed to be
read-only: exact matches first, then each unmatched gold action is paired with the closest
successful call of the same tool (wrong arguments), or the failed attempts at it (the call never
went through), or nothing (missing); successful calls of write tools left over are extra; matched
calls made in another order than the gold list are out of order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipeline.analyse.miner.text import canonical, normalise

_IDENTIFIER = re.compile(r"(?i)(id|number|code|key|name|no)$")


@dataclass
class ArgDiff:
    path: str  # where: 'flights[HAT039].date'
    pattern: str  # the same with element keys dropped: 'flights[].date'
    given: Any
    expected: Any
    kind: str  # value / missing (expected, not given) / extra (given, not expected)


@dataclass
class Call:
    step_idx: int
    tool_name: str
    args: Any
    is_error: bool = False
    error_text: str | None = None
    result_step_idx: int | None = None

    @cached_property
    def canon(self) -> str:
        """The arguments in canonical JSON (computed once: several rules compare calls)."""
        return canonical(self.args)

    @property
    def steps(self) -> list[int]:
        return [self.step_idx] + (
            [self.result_step_idx] if self.result_step_idx is not None else []
        )


@dataclass
class GoldAction:
    pos: int
    name: str
    kwargs: Any


@dataclass
class GoldFinding:
    kind: str  # missing / wrong_args / failed / extra / order
    tool: str
    gold: GoldAction | None = None
    call: Call | None = None
    diffs: list[ArgDiff] = field(default_factory=list)
    attempts: list[Call] = field(default_factory=list)


def _identity_key(given: list, expected: list) -> str | None:
    """The field that best identifies elements of two lists of objects, or None."""
    if not all(isinstance(x, dict) for x in given + expected) or not given or not expected:
        return None
    keys = set.intersection(*(set(x) for x in given + expected))
    best, best_overlap = None, 0
    for key in sorted(keys, key=lambda k: (not _IDENTIFIER.search(k), k)):
        g = [canonical(x[key]) for x in given]
        e = [canonical(x[key]) for x in expected]
        if len(set(g)) != len(g) or len(set(e)) != len(e):
            continue
        overlap = len(set(g) & set(e))
        if overlap > best_overlap:
            best, best_overlap = key, overlap
    return best


def _label(value: Any) -> str:
    return value if isinstance(value, str) else canonical(value)


def diff_args(given: Any, expected: Any, path: str = "", pattern: str = "") -> list[ArgDiff]:
    """Every difference between `given` and `expected` (see the module docstring)."""
    given, expected = normalise(given), normalise(expected)
    if isinstance(given, dict) and isinstance(expected, dict):
        out: list[ArgDiff] = []
        for key in list(expected) + [k for k in given if k not in expected]:
            sub = f"{path}.{key}" if path else key
            subpat = f"{pattern}.{key}" if pattern else key
            if key not in given:
                out.append(ArgDiff(sub, subpat, None, expected[key], "missing"))
            elif key not in expected:
                out.append(ArgDiff(sub, subpat, given[key], None, "extra"))
            else:
                out += diff_args(given[key], expected[key], sub, subpat)
        return out
    if isinstance(given, list) and isinstance(expected, list):
        return _diff_lists(given, expected, path, pattern)
    if canonical(given) == canonical(expected):
        return []
    return [ArgDiff(path, pattern, given, expected, "value")]


def _diff_lists(given: list, expected: list, path: str, pattern: str) -> list[ArgDiff]:
    key = _identity_key(given, expected)
    if key is not None:
        g = {canonical(x[key]): x for x in given}
        e = {canonical(x[key]): x for x in expected}
        out: list[ArgDiff] = []
        for k, item in e.items():
            sub = f"{path}[{_label(item[key])}]"
            if k not in g:
                out.append(ArgDiff(sub, f"{pattern}[]", None, item, "missing"))
            else:
                out += diff_args(g[k], item, sub, f"{pattern}[]")
        out += [
            ArgDiff(f"{path}[{_label(item[key])}]", f"{pattern}[]", item, None, "extra")
            for k, item in g.items()
            if k not in e
        ]
        return _pair_replacements(out, path, pattern)
    if len(given) == len(expected) and all(isinstance(x, dict) for x in given + expected):
        out = []
        for i, (a, b) in enumerate(zip(given, expected, strict=True)):
            out += diff_args(a, b, f"{path}[{i}]", f"{pattern}[]")
        return out
    g_left = [canonical(x) for x in given]
    out = []
    for item in expected:
        c = canonical(item)
        if c in g_left:
            g_left.remove(c)
        else:
            out.append(ArgDiff(f"{path}[]", f"{pattern}[]", None, item, "missing"))
    for c in g_left:
        out.append(ArgDiff(f"{path}[]", f"{pattern}[]", json.loads(c), None, "extra"))
    return _pair_replacements(out, path, pattern)


def _pair_replacements(diffs: list[ArgDiff], path: str, pattern: str) -> list[ArgDiff]:
    """A missing element and an extra one in the same list read as one replaced element."""
    missing = [d for d in diffs if d.kind == "missing" and d.pattern == f"{pattern}[]"]
    extra = [d for d in diffs if d.kind == "extra" and d.pattern == f"{pattern}[]"]
    pairs = list(zip(extra, missing, strict=False))
    paired = {id(d) for pair in pairs for d in pair}
    out = [d for d in diffs if id(d) not in paired]
    out += [ArgDiff(f"{path}[]", f"{pattern}[]", x.given, m.expected, "value") for x, m in pairs]
    return out


def exact_matches(calls: list[Call], gold: list[GoldAction]) -> dict[int, Call]:
    """gold pos -> the successful call with identical arguments (each call used once)."""
    used: set[int] = set()
    matched: dict[int, Call] = {}
    for g in gold:
        want = canonical(g.kwargs)
        for c in calls:
            if c.is_error or c.step_idx in used or c.tool_name != g.name:
                continue
            if c.canon == want:
                matched[g.pos] = c
                used.add(c.step_idx)
                break
    return matched


def gold_diff(
    calls: list[Call], gold: list[GoldAction], read_only: set[str], write_tools: set[str]
) -> list[GoldFinding]:
    """Findings for one run, in gold order, then extras, then order (module docstring)."""
    gold = [g for g in gold if g.name not in read_only]
    calls = [c for c in calls if c.tool_name not in read_only]
    matched = exact_matches(calls, gold)
    used = {c.step_idx for c in matched.values()}
    findings: list[GoldFinding] = []
    for g in gold:
        if g.pos in matched:
            continue
        same = [c for c in calls if c.tool_name == g.name and c.step_idx not in used]
        ok = [c for c in same if not c.is_error]
        pool = ok or same
        if not pool:
            findings.append(GoldFinding("missing", g.name, g))
            continue
        best = min(pool, key=lambda c: (len(diff_args(c.args, g.kwargs)), c.step_idx))
        diffs = diff_args(best.args, g.kwargs)
        if ok:
            used.add(best.step_idx)
            findings.append(GoldFinding("wrong_args", g.name, g, best, diffs))
        else:
            findings.append(GoldFinding("failed", g.name, g, best, diffs, attempts=same))
    for c in calls:
        if not c.is_error and c.step_idx not in used and c.tool_name in write_tools:
            findings.append(GoldFinding("extra", c.tool_name, None, c))
    order = [matched[pos] for pos in sorted(matched)]
    if any(a.step_idx > b.step_idx for a, b in zip(order, order[1:], strict=False)):
        findings.append(GoldFinding("order", order[0].tool_name, None, None, attempts=order))
    return findings
