"""The `agentic` analyst: a tool-using conversation per trajectory, many at once.

Reads each run of a batch (its `trajectories` row and `steps`), the lake through the read-only
tools of `tools.py`, and the base skill; the map writes what it returns. A conversation starts
from the prompt ``agentic-v<N>.md`` (the run's case, the tools offered, the run rendered within
`render_tokens`, the skill's section names) and goes on while the model calls tools (chat
completions with ``tools``, the tool choice left to the server's default, auto), up to
`max_turns` turns and `tokens_per_run` tokens. Tool results (errors included: bad arguments are answered, not raised) go back as tool
messages. The model ends by replying with the lessons' JSON; a reply that is not that JSON, the
last turn, or the token budget leads to one forced final turn (``tool_choice = none`` with the
answer's ``response_format``, validated and repaired once by the model layer). If that fails too,
the run gets an error row.

The token budget is counted on the conversation's text (characters / 4, prompt and reply of
every turn), not on the server's counts, so a rerun answered from the cache takes the same path.
Conversations run concurrently, at most `concurrency` at once (the model settings' limit).

The context window: the opening renders the run in half of what the window leaves after the
prompt and the answer, tool results are cut to a share of the window, and before each turn the
oldest tool results are cut (their call kept) until the conversation fits; a turn the server
still finds too long goes straight to the final answer. On a server without native tool calls the
model layer carries the same conversation in its text protocol (one JSON action per reply).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import duckdb
import polars as pl

from pipeline import sql
from pipeline.analyse.analyst import AnalysisResult, AnalysisUsage, Batch, error_reason, now
from pipeline.analyse.lakeview import LakeView
from pipeline.analyse.miner.gold import Call, GoldAction
from pipeline.analyse.miner.pool import calls_by_run, gold_of
from pipeline.analyse.model_analyst import (
    MARGIN_TOKENS,
    ModelAnalyst,
    PromptTooLong,
    case_of,
    gather_bounded,
    positive_option,
    usage_of,
)
from pipeline.analyse.render import cut_middle, estimate_tokens, render_trajectory
from pipeline.analyse.tools import TOOLS_VERSION, RunTools
from pipeline.lake import Lake
from pipeline.llm import ChatRequest
from pipeline.llm.loop import End, tool_loop
from pipeline.llm.types import validate_output

STAGE = "analyse"
DEFAULT_MAX_TURNS = 12
DEFAULT_TOKENS_PER_RUN = 60_000
OPENING_SHARE = 0.5  # of the room the window leaves: the rest is for the turns
RESULT_SHARE = 0.15  # most of the window one tool result may take
CUT = "[... cut to fit the context window ...]"


class AgenticAnalyst(ModelAnalyst):
    name = "agentic"
    prompt_name = "agentic"
    option_names = (*ModelAnalyst.option_names, "max_turns", "tokens_per_run")
    batch_api = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_turns = positive_option(self.options, "max_turns", DEFAULT_MAX_TURNS)
        self.tokens_per_run = positive_option(
            self.options, "tokens_per_run", DEFAULT_TOKENS_PER_RUN
        )
        self.settings |= {
            "max_turns": self.max_turns,
            "tokens_per_run": self.tokens_per_run,
            "tools": TOOLS_VERSION,
        }
        self.view: LakeView | None = None

    def prepare(self, lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
        super().prepare(lake, con)
        self.view = LakeView(lake)

    def close(self) -> None:
        super().close()
        if self.view is not None:
            self.view.close()
            self.view = None

    def analyse_batch(self, batch: Batch) -> list[AnalysisResult]:
        if self.llm is None or self.view is None:
            raise RuntimeError("AgenticAnalyst.prepare must run before analyse_batch")
        gold, calls = _gold_and_calls(batch)
        conversations = [
            self._guarded(
                row, steps, gold.get(row["trajectory_id"]), calls.get(row["trajectory_id"])
            )
            for row, steps in batch.items()
        ]
        return self.run(gather_bounded(self.model_settings.concurrency, conversations))

    async def _guarded(self, row, steps, gold, calls) -> AnalysisResult:
        started = now()
        try:
            return await self.converse(row, steps, gold, calls)
        except PromptTooLong as exc:
            return AnalysisResult(
                row["trajectory_id"], error=f"[context] {exc}", started_at=started
            )
        except Exception as exc:  # one broken conversation must not end the batch
            return AnalysisResult(row["trajectory_id"], error=error_reason(exc), started_at=started)
        finally:
            self.tick()

    async def converse(
        self,
        row: dict[str, Any],
        steps: pl.DataFrame,
        gold: list[GoldAction] | None = None,
        calls: list[Call] | None = None,
    ) -> AnalysisResult:
        """One run's conversation, to its outcome (see the module docstring)."""
        started = now()
        tid = row["trajectory_id"]
        case = case_of(row.get("outcome"))
        tools = RunTools(row, steps, self.view, sections=self.sections, gold=gold, calls=calls)
        messages = self.opening(row, steps, tools)
        turns = _Turns(self, row, steps, tools, self.answer_type(case))
        end = await tool_loop(self.llm, messages, turns, self.max_turns)
        usage, n_tools, answer_type = turns.usage, turns.n_tools, turns.answer_type
        if end.how == "failed":
            kind = f"[{end.result.error_kind}] " if end.result.error_kind else ""
            return self._failed(
                tid, usage, started, n_tools, f"turn {end.turn + 1}: {kind}{end.result.error}"
            )
        answer = turns.answer
        why = end.why or f"the turn limit ({self.max_turns})"
        specs = turns.specs
        if answer is None:
            final = [*messages, self.final_message()]
            self.fit(final, specs)  # the window, as learnt so far, holds the final turn too
            ask = self._request(
                final, tid, tools=specs, tool_choice="none", answer=answer_type,
                choices=self.choices(steps),
            )  # fmt: skip
            res = await self.llm.achat(ask)
            usage.add(usage_of(res))
            if res.error_kind == "context":  # the server's sizes: cut to them and ask once more
                self.learn_window_from(res, _chars(final) + len(json.dumps(specs)))
                before = _chars(final)
                if not (self.fit(final, specs) and _chars(final) < before):
                    # cutting the turns is not enough: the run rendered again for the window
                    # the server gave, and the answer asked of that alone
                    final = [*self.opening(row, steps, tools), self.final_message()]
                res = await self.llm.achat(dataclasses.replace(ask, messages=list(final)))
                usage.add(usage_of(res))
            if not res.ok or res.parsed is None:
                reason = res.error or "no answer"
                kind = f"[{res.error_kind}] " if res.error_kind else ""
                return self._failed(
                    tid, usage, started, n_tools, f"final answer after {why}: {kind}{reason}"
                )
            answer = res.parsed
        return self.finish(row, steps, case, answer, usage, started, n_tool_calls=n_tools)

    def opening(self, row: dict[str, Any], steps: pl.DataFrame, tools: RunTools) -> list[dict]:
        """The system and user messages a run's conversation starts from."""
        case = case_of(row.get("outcome"))
        skill = self.skill_block(with_text=False)
        extra = {
            "tools": tools.describe(),
            "max_turns": self.max_turns,
            "shape": self.prompt.text("shape_judged" if case == "judge" else "shape_lessons"),
        }
        frame = self.prompt.messages(**self.values(case, "", skill), **extra)
        budget = self.run_budget(
            sum(len(m["content"]) for m in frame) + len(json.dumps(tools.specs())),
            share=OPENING_SHARE,
        )
        trajectory = render_trajectory(row, steps, budget_tokens=budget)
        return self.prompt.messages(**self.values(case, trajectory, skill), **extra)

    def result_chars(self) -> int:
        """Most characters of one tool result: TOOL_CHARS, or a share of a small window."""
        if self.context_tokens is None:
            return 10**9
        return max(int(self.context_tokens * RESULT_SHARE * self.chars_per_token), 400)

    def fit(self, messages: list[dict], specs: list[dict], room: float = 1.0) -> bool:
        """Cut the oldest tool results, then the oldest replies' text (in place; a reply's tool
        calls stay) until the conversation and the tools offered leave room for the answer in
        `room` of the context window; False if that is not enough."""
        if self.context_tokens is None:
            return True
        limit = (
            self.context_tokens * room - self.answer_tokens - MARGIN_TOKENS
        ) * self.chars_per_token - len(json.dumps(specs))

        def size() -> int:
            return sum(len(str(m.get("content") or "")) + 40 for m in messages)

        for role in ("tool", "assistant"):  # tool results first, then the model's own prose
            for m in messages:
                if size() <= limit:
                    return True
                if m.get("role") == role and m.get("content") not in (None, "", CUT):
                    m["content"] = CUT
        return size() <= limit

    def final_message(self) -> dict:
        return {"role": "user", "content": self.prompt.text("final")}

    def _request(
        self, messages, tid, *, tools, tool_choice=None, answer=None, choices=None
    ) -> ChatRequest:
        return ChatRequest(
            messages=list(messages),
            tools=tools,
            tool_choice=tool_choice,
            response_model=answer,
            choices=choices,
            max_tokens=self.answer_tokens,
            prompt_version=self.prompt_version,
            stage=STAGE,
            tag=tid,
        )

    def _failed(
        self, tid: str, usage: AnalysisUsage, started, n_tools: int, reason: str
    ) -> AnalysisResult:
        return AnalysisResult(
            tid, [], usage, f"model call failed at {reason}", started, now(), n_tool_calls=n_tools
        )


class _Turns:
    """The analyst's side of the tool loop (`pipeline.llm.loop`): its budgets and window before
    each turn, a too-long opening asked again once the window is learnt, tool results cut to a
    share of the window, and a reply without tool calls taken as the answer if it is one."""

    def __init__(self, analyst: AgenticAnalyst, row, steps, tools: RunTools, answer_type):
        self.a, self.row, self.steps, self.tools = analyst, row, steps, tools
        self.specs, self.answer_type = tools.specs(), answer_type
        self.usage, self.n_tools, self.spent, self.prompt_tokens = AnalysisUsage(), 0, 0, 0
        self.answer = None

    def request(self, messages: list[dict], turn: int) -> ChatRequest | End:
        a = self.a
        self.prompt_tokens = estimate_tokens(json.dumps(messages, ensure_ascii=False))
        if turn and self.spent + self.prompt_tokens > a.tokens_per_run:
            return End("stopped", turn, f"the token budget ({a.tokens_per_run:,} per run)")
        if turn and not a.fit(messages, self.specs):
            return End("stopped", turn, "the context window (the conversation filled it)")
        return a._request(messages, self.row["trajectory_id"], tools=self.specs)

    async def checked(self, res, messages: list[dict], turn: int):
        a = self.a
        if res.error_kind == "context" and turn == 0:  # the window, learnt: open again
            self.usage.add(usage_of(res))
            a.learn_window_from(res, _chars(messages) + len(json.dumps(self.specs)))
            messages[:] = a.opening(self.row, self.steps, self.tools)
            res = await a.llm.achat(
                a._request(messages, self.row["trajectory_id"], tools=self.specs)
            )
        self.usage.add(usage_of(res))
        if res.error_kind == "context" and turn:
            a.fit(messages, self.specs, room=0.6)
            why = "the context window (the server found the conversation too long)"
            return End("stopped", turn, why)
        if res.ok:
            reply = estimate_tokens(json.dumps(res.message, ensure_ascii=False))
            self.spent += self.prompt_tokens + reply
        return res

    def text(self, res, messages: list[dict], turn: int) -> End:
        try:
            self.answer = validate_output(self.answer_type, _unfenced(res.content))
        except ValueError:
            return End("stopped", turn, "a reply that was not the JSON answer")
        return End("answered", turn)

    async def call(self, call: dict, call_id: str, index: int, res, messages) -> str:
        text, _bad = await self.tools.run(call.get("name"), call.get("arguments"), call["raw"])
        self.n_tools += 1
        return cut_middle(text, self.a.result_chars())

    def after_calls(self, turn: int) -> None:
        return None


def _chars(messages: list[dict]) -> int:
    return sum(len(str(m.get("content") or "")) for m in messages)


def _unfenced(content: str | None) -> str | None:
    """A reply's JSON without the Markdown code fence some models wrap it in."""
    if content is None:
        return None
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def _gold_and_calls(batch: Batch) -> tuple[dict[str, list[GoldAction]], dict[str, list[Call]]]:
    """Gold actions (where the grader lists them) and parsed calls of a batch's runs, read with
    the miner's own queries so both analysts see the grader alike."""
    con = duckdb.connect(":memory:")
    try:
        con.register("trajectories", batch.trajectories)
        con.register("steps", batch.steps)
        runs = sql.query(con, "miner_runs")
        calls = calls_by_run(sql.query(con, "miner_calls", result_chars=0))
    finally:
        con.close()
    gold = {
        tid: actions
        for tid, text in runs.select("trajectory_id", "gold_actions").iter_rows()
        if (actions := gold_of(text))
    }
    return gold, dict(calls)
