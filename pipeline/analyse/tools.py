"""The agentic analyst's read-only tools over one run, the pool and the base skill.

Reads the analysed run's steps (in memory), the base skill's sections, and the lake through
`LakeView`; writes nothing. Every tool's arguments are a pydantic model (its JSON schema is the
tool's ``parameters``); arguments that do not fit, an unknown tool, a bad regular expression or a
refused query come back as an ``error: ...`` text the model can act on, never as an exception.
Every result passes through `redact` and is cut to `TOOL_CHARS`, so no secret and no flood of text
reaches the model. A tool is offered only where it can work: `compare_gold` for a run whose
grader lists gold actions, `successful_run` for a run with a task id, `read_skill` when
deepening a skill.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from pydantic import BaseModel, Field

from pipeline.analyse.lakeview import COLUMNS, ROW_CAP, TIME_LIMIT_S, LakeView
from pipeline.analyse.miner.gold import Call, GoldAction, GoldFinding, gold_diff
from pipeline.analyse.miner.text import plural, shorten
from pipeline.analyse.redact import redact
from pipeline.analyse.render import cut_middle, render_trajectory, step_parts
from pipeline.analyse.sections import Section
from pipeline.llm.tools import Tool, ToolError, unknown
from pipeline.skill.document import norm_title

TOOLS_VERSION = "tools-1"  # part of the agentic analyst's configuration
TOOL_CHARS = 8000
STEP_CHARS = 2500
MAX_READ_STEPS = 40
MAX_HITS = 30
CONTRAST_TOKENS = 2500


class ReadSteps(BaseModel):
    start: int = Field(ge=0, description="first step number")
    end: int = Field(ge=0, description="last step number (inclusive)")


class SearchRun(BaseModel):
    pattern: str = Field(min_length=1, max_length=300, description="regular expression")
    max_hits: int = Field(20, ge=1, le=MAX_HITS, description="most matching steps to list")


class QueryPool(BaseModel):
    sql: str = Field(min_length=1, max_length=4000, description="one SELECT statement")


class SuccessfulRun(BaseModel):
    which: int = Field(0, ge=0, description="0 for the shortest successful run, 1 the next, ...")


class CompareGold(BaseModel):
    pass


class ReadSkill(BaseModel):
    section: str = Field(description="heading of the section, as listed")


class RunTools:
    """The tools for one run."""

    def __init__(
        self,
        row: dict[str, Any],
        steps: pl.DataFrame,
        view: LakeView,
        *,
        sections: list[Section] | None = None,
        gold: list[GoldAction] | None = None,
        calls: list[Call] | None = None,
    ):
        self.row = row
        self.steps = steps.sort("step_idx").to_dicts()
        self.view = view
        self.sections = sections
        self.gold = gold
        self.calls = calls or []
        self.lines = [p + b for p, b in (step_parts(s) for s in self.steps)]
        self.tools = self._offered()
        self.by_name = {t.name: t for t in self.tools}

    def _offered(self) -> list[Tool]:
        tools = [
            Tool(
                "read_steps",
                f"Show steps start..end of this run in full (the run has steps "
                f"{self._first()}..{self._last()}; at most {MAX_READ_STEPS} at a time).",
                ReadSteps,
                self.read_steps,
            ),
            Tool(
                "search_run",
                "List the steps of this run whose text (tool names, arguments, contents) matches "
                "a regular expression, case-insensitive, with the matching text.",
                SearchRun,
                self.search_run,
            ),
            Tool(
                "query_pool",
                "Run one read-only SQL SELECT (DuckDB) over every run in the lake, e.g. to count "
                "how often a tool fails with a message, or how runs that succeeded did a step. "
                "Tables: "
                + "; ".join(f"{t}({c})" for t, c in COLUMNS.items())
                + f". At most {ROW_CAP} rows, {TIME_LIMIT_S:g} seconds.",
                QueryPool,
                self.query_pool,
            ),
        ]
        if self.row.get("task_id"):
            tools.append(
                Tool(
                    "successful_run",
                    "Show another run of the same task that succeeded, to contrast with this one.",
                    SuccessfulRun,
                    self.successful_run,
                )
            )
        if self.gold:
            tools.append(
                Tool(
                    "compare_gold",
                    "Diff the agent's write calls against the grader's gold actions (missing, "
                    "failed, extra calls; wrong arguments, by path; order).",
                    CompareGold,
                    self.compare_gold,
                )
            )
        if self.sections is not None:
            tools.append(
                Tool(
                    "read_skill",
                    "Show one section of the skill being deepened, in full.",
                    ReadSkill,
                    self.read_skill,
                )
            )
        return tools

    def specs(self) -> list[dict]:
        return [t.spec() for t in self.tools]

    def describe(self) -> str:
        """One line per offered tool, for the system prompt."""
        return "\n".join(f"- {t.name}: {t.description}" for t in self.tools)

    async def run(self, name: str | None, args: Any, raw: str = "") -> tuple[str, bool]:
        """(result text, is_error) of one call; never raises."""
        tool = self.by_name.get(name or "")
        if tool is None:
            text, bad = unknown(name, list(self.by_name)), True
        else:
            text, bad = await tool.call(args, raw)
        return cut_middle(redact(text) or "", TOOL_CHARS), bad

    # -- the tools ---------------------------------------------------------------------------
    def _first(self) -> int:
        return self.steps[0]["step_idx"] if self.steps else 0

    def _last(self) -> int:
        return self.steps[-1]["step_idx"] if self.steps else -1

    def read_steps(self, a: ReadSteps) -> str:
        if a.end < a.start:
            raise ToolProblem(f"end ({a.end}) is before start ({a.start})")
        if a.start > self._last():
            raise ToolProblem(f"the run has steps {self._first()}..{self._last()}")
        picked = [
            (p, b)
            for s, (p, b) in zip(self.steps, map(step_parts, self.steps), strict=True)
            if a.start <= s["step_idx"] <= a.end
        ]
        out, used = [], 0
        for i, (prefix, body) in enumerate(picked[:MAX_READ_STEPS]):
            line = prefix + cut_middle(body, STEP_CHARS)
            if out and used + len(line) > TOOL_CHARS - 200:
                out.append(
                    f"[... stopped to fit: read on from the next step ({len(picked) - i} left)]"
                )
                break
            out.append(line)
            used += len(line) + 1
        else:
            if len(picked) > MAX_READ_STEPS:
                out.append(f"[... {len(picked) - MAX_READ_STEPS} more steps: read them next]")
        return "\n".join(out) if out else "(no steps in that range)"

    def search_run(self, a: SearchRun) -> str:
        frame = pl.DataFrame(
            {"step_idx": [s["step_idx"] for s in self.steps], "line": self.lines},
            schema={"step_idx": pl.Int64, "line": pl.String},
        )
        pattern = f"(?i){a.pattern}"
        try:
            hits = frame.with_columns(pl.col("line").str.find(pattern).alias("at")).filter(
                pl.col("at").is_not_null()
            )
        except pl.exceptions.PolarsError as exc:
            detail = " ".join(str(exc).split("This error occurred")[0].split())
            raise ToolProblem(f"{detail} (the syntax of Rust's regex crate)") from None
        if not hits.height:
            return f"no step matches {a.pattern!r}"
        out = [f"{hits.height} steps match {a.pattern!r}:"]
        for step, line, at_byte in hits.head(a.max_hits).iter_rows():
            at = len(line.encode()[:at_byte].decode(errors="ignore"))  # polars gives bytes
            start = max(0, at - 120)
            prefix = "" if start == 0 else f"[{step}] ..."
            out.append((prefix + " ".join(line[start : at + 240].split()))[:400])
        if hits.height > a.max_hits:
            out.append(f"[... {hits.height - a.max_hits} more matches]")
        return "\n".join(out)

    def query_pool(self, a: QueryPool) -> str:
        return self.view.query(a.sql)

    def successful_run(self, a: SuccessfulRun) -> str:
        found, n_task = self.view.contrast(self.row)
        task = self.row.get("task_id")
        if not found.height:
            return (
                f"no other successful run of task {task} in source {self.row['source']} "
                f"({plural(n_task, 'run')} of it in the lake)"
            )
        if a.which >= found.height:
            raise ToolProblem(
                f"there are {found.height} successful runs: which is 0..{found.height - 1}"
            )
        other = found.row(a.which, named=True)
        steps = self.view.steps_of(other["trajectory_id"], other["source"])
        text = render_trajectory(other, steps, budget_tokens=CONTRAST_TOKENS)
        return (
            f"Successful run {a.which + 1} of {found.height} of task {task} "
            f"({plural(n_task, 'run')} of the task in the lake):\n{text}"
        )

    def compare_gold(self, a: CompareGold) -> str:
        read_only, write = self.view.gold_roles(self.row["source"])
        findings = gold_diff(self.calls, self.gold or [], read_only, write)
        gold = [g for g in self.gold or [] if g.name not in read_only]
        lines = ["Gold actions (the grader's expected calls; the agent never saw them):"]
        lines += [f"  {g.pos + 1}. {g.name}({_args(g.kwargs)})" for g in gold] or ["  (none)"]
        if read_only:
            lines.append(
                f"Read-only tools, left out of the comparison: {', '.join(sorted(read_only))}"
            )
        lines.append(
            "Findings:" if findings else "No difference: every gold call was made as given."
        )
        lines += [f"- {_finding(f)}" for f in findings]
        return "\n".join(lines)

    def read_skill(self, a: ReadSkill) -> str:
        want = norm_title(a.section.lstrip("#"))
        for s in self.sections or []:
            if norm_title(s.heading) == want:
                return f"{'#' * s.level} {s.heading}\n{s.body or '(empty)'}"
        names = ", ".join(repr(s.heading) for s in self.sections or [])
        raise ToolProblem(f"no section {a.section!r}; the sections are {names}")


class ToolProblem(ToolError):
    """Arguments a tool cannot serve, in words the model can act on."""


def _args(kwargs: Any) -> str:
    if isinstance(kwargs, dict):
        return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in kwargs.items())
    return shorten(kwargs, 300)


def _finding(f: GoldFinding) -> str:
    if f.kind == "wrong_args":
        diffs = "; ".join(
            f"{d.path or 'arguments'}: {d.kind}, given {shorten(d.given, 80)}, "
            f"expected {shorten(d.expected, 80)}"
            for d in f.diffs[:6]
        )
        return f"wrong arguments: {f.tool} at step {f.call.step_idx}: {diffs}"
    if f.kind == "missing":
        return f"missing: {f.tool}({_args(f.gold.kwargs)}) was never made"
    if f.kind == "failed":
        tried = ", ".join(str(c.step_idx) for c in f.attempts)
        error = shorten(f.call.error_text or "", 200) if f.call else ""
        return f"failed: every attempt at {f.tool} failed (steps {tried}): {error}"
    if f.kind == "extra":
        return f"extra: {f.tool} at step {f.call.step_idx} is not among the gold actions"
    if f.kind == "order":
        order = ", ".join(f"{c.tool_name}@{c.step_idx}" for c in f.attempts)
        return f"order: the gold calls were made in another order ({order})"
    return f"{f.kind}: {f.tool}"
