"""What the `single` and `agentic` analysts share: the model client, the prompt, the base skill,
the case of each run, and the checks that turn a model's answer into an `AnalysisResult`.

Reads a run (its `trajectories` row and `steps`) and, when deepening, the base skill's SKILL.md;
writes nothing itself (the map writes `lessons` and `analyses`; the model layer logs every call in
`llm_calls`). A run of known outcome gets the failure or the success task of the prompt; a run of
unknown outcome gets the judge task (the model judges success or failure first, then analyses),
and the judgement is recorded on its `analyses` row.

Configuration (part of the analyst's configuration id, so a change re-analyses): the model, the
prompt version, `max_lessons`, `render_tokens` (budget of the rendered run in a prompt), the base
skill's text, and the generation parameters that change answers (temperature, seed, max_tokens).
Concurrency, budgets and the server address are not: they change how, not what.

Sizes: the answer's completion limit follows from `max_lessons` (`answer_tokens`; the max_tokens
setting overrides it), and the rendered run fits what the endpoint's context window leaves after
the rest of the prompt and the answer (`Fit`), measured in the server's own tokens where the
endpoint has seen its ratio of characters to tokens, else with a cautious guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from pipeline import ids
from pipeline.analyse.analyst import AnalysisResult, AnalysisUsage, BaseAnalyst, now
from pipeline.analyse.prompts import answer_model, check_lessons, load_prompt
from pipeline.analyse.redact import redact
from pipeline.analyse.render import CHARS_PER_TOKEN, DEFAULT_BUDGET_TOKENS, cut_middle
from pipeline.analyse.sections import parse_sections, skill_file
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm import LLM, ChatResult, ModelSettings
from pipeline.llm.endpoint import GRAMMAR_SERVERS
from pipeline.llm.transport import api_key

DEFAULT_MAX_LESSONS = 3
SKILL_TOKENS = 2500  # budget of the base skill's text in a single-call prompt
ANSWER_BASE_TOKENS = 200  # the answer's frame and a judgement
ANSWER_LESSON_TOKENS = 320  # one lesson as JSON
GUESS_CHARS_PER_TOKEN = 3.0  # until the server's counts say otherwise (small vocabularies)
MARGIN_TOKENS = 64  # chat template and rounding
MIN_RUN_TOKENS = 150  # below this the run is not worth showing: the prompt does not fit
SKILL_SHARE = 0.25  # most of a small context window the base skill's text may take
ANSWER_SHARE = 0.25  # most of a small context window the answer may take


class PromptTooLong(ValueError):
    """The prompt cannot fit the endpoint's context window, even with the run cut short."""


CASES = {"failure": "failure", "success": "success"}  # anything else is judged


def case_of(outcome: str | None) -> str:
    """failure / success for a known outcome, judge otherwise."""
    return CASES.get(outcome or "", "judge")


def usage_of(result: ChatResult) -> AnalysisUsage:
    return AnalysisUsage(
        n_calls=1,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        cost_usd=result.cost_usd,
        cache_hits=int(result.cache_hit),
    )


class _Relay:
    """The console handed to the model layer: its messages go to ours, and its progress bar
    (one tick per request) drives the map's bar instead of drawing a second one."""

    def __init__(self, console: Console, analyst: ModelAnalyst):
        self._console = console
        self._analyst = analyst

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console, name)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Any]:
        yield self._analyst.tick


class ModelAnalyst(BaseAnalyst):
    """Base of the model analysts; subclasses set `name`, `prompt_name` and `analyse_batch`."""

    name = "model"
    prompt_name = ""
    needs_model = True
    reports_progress = True  # the map hands over its progress callback as `advance`
    option_names: tuple[str, ...] = ("render_tokens",)
    batch_api = True  # its requests can go as one job of the server's batch API

    def __init__(
        self,
        model_settings: ModelSettings,
        options: Mapping[str, Any] | None = None,
        *,
        base_skill: str | Path | None = None,
        console: Console | None = None,
    ):
        if model_settings.offline:
            raise ValueError(
                f"the {self.name} analyst needs a model: pass --model NAME "
                "(and --base-url for a local OpenAI-compatible server)"
            )
        if model_settings.batch and not self.batch_api:
            raise ValueError(
                f"the {self.name} analyst holds a conversation per run, which the batch API "
                "cannot; --batch applies to the single analyst"
            )
        api_key(model_settings)  # fail now, not at the first request, when no key is set
        opts = {k: v for k, v in dict(options or {}).items() if v is not None}
        opts.pop("batch_size", None)
        unknown = sorted(set(opts) - {"max_lessons", *self.option_names})
        if unknown:
            raise ValueError(f"unknown options for the {self.name} analyst: {unknown}")
        self.model_settings = model_settings
        self.model = model_settings.model
        self.console = console or Console(0)
        self.prompt = load_prompt(self.prompt_name)
        self.prompt_version = self.prompt.tag
        self.max_lessons = positive_option(opts, "max_lessons", DEFAULT_MAX_LESSONS)
        self.render_tokens = positive_option(opts, "render_tokens", DEFAULT_BUDGET_TOKENS)
        self.options = opts
        self.skill_text = None
        self.sections = None
        if base_skill is not None:
            self.skill_text = skill_file(base_skill).read_text(encoding="utf-8")
            self.sections = parse_sections(self.skill_text)
        self.settings = {
            "max_lessons": self.max_lessons,
            "render_tokens": self.render_tokens,
            "base_skill": ids.digest(self.skill_text) if self.skill_text is not None else None,
            "temperature": model_settings.temperature,
            "seed": model_settings.seed,
            "max_tokens": model_settings.max_tokens,
        }
        self.answer_tokens = model_settings.max_tokens or (
            ANSWER_BASE_TOKENS + ANSWER_LESSON_TOKENS * self.max_lessons
        )
        self.stage_answer_tokens = self.answer_tokens
        self.llm: LLM | None = None
        self.context_tokens: int | None = None
        self.grammar = False  # the server makes a grammar of the answer's schema
        self.chars_per_token = GUESS_CHARS_PER_TOKEN
        self.advance = lambda n=1: None

    @property
    def headings(self) -> list[str] | None:
        return None if self.sections is None else [s.heading for s in self.sections]

    # -- the map's hooks ---------------------------------------------------------------------
    def prepare(self, lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
        self.llm = LLM(self.model_settings, lake, console=_Relay(self.console, self))
        self.learn_window()

    def learn_window(self) -> None:
        """Take the context window and the characters per token from the endpoint."""
        ep = self.llm.endpoint_now() if self.llm is not None else None
        if ep is not None:
            self.grammar = ep.server in GRAMMAR_SERVERS
            self.context_tokens = ep.context_tokens
            if ep.chars_per_token:
                self.chars_per_token = min(ep.chars_per_token, 4.0)
            if ep.context_tokens and not self.model_settings.max_tokens:
                # a small window: the answer must leave room for the run
                share = int(ep.context_tokens * ANSWER_SHARE)
                self.answer_tokens = min(self.stage_answer_tokens, max(share, 256))

    def run_budget(self, prompt_chars: int, share: float = 1.0) -> int:
        """Render tokens (of the renderer's four characters) left for the run in a prompt whose
        other text has `prompt_chars` characters: `render_tokens`, or less where the context
        window is smaller; `share` of the room when later turns need the rest."""
        if self.context_tokens is None:
            return self.render_tokens
        room = self.context_tokens - self.answer_tokens - MARGIN_TOKENS
        room -= int(prompt_chars / self.chars_per_token) + 1
        room = int(room * share)
        if room < MIN_RUN_TOKENS:
            raise PromptTooLong(
                f"the context window ({self.context_tokens:,} tokens) leaves no room for the run "
                f"after the prompt (~{int(prompt_chars / self.chars_per_token):,} tokens) and "
                f"the answer ({self.answer_tokens:,})"
            )
        return min(self.render_tokens, int(room * self.chars_per_token / CHARS_PER_TOKEN))

    def learn_window_from(self, result, prompt_chars: int) -> None:
        """Take the window and the characters per token from an over-long prompt's error
        (the server's own sizes): the next prompt is made to fit them."""
        n, m = result.context or (None, None)
        if m:
            self.context_tokens = min(self.context_tokens or m, m)
        if n:
            self.chars_per_token = min(self.chars_per_token, prompt_chars / n)

    def shrink(self, budget: int, context: tuple[int | None, int | None] | None) -> int:
        """A smaller run budget after the server said the prompt did not fit: scaled by how
        much it was over (both sizes from its error), or halved when it did not say."""
        n, m = context or (None, None)
        if n and m:
            if self.context_tokens is None or m < self.context_tokens:
                self.context_tokens = m
            return int(budget * max(m - self.answer_tokens - MARGIN_TOKENS, 0) / n * 0.85)
        return budget // 2

    def tick(self, n: int = 1) -> None:
        self.advance(n)

    def stop_reason(self) -> str | None:
        if self.llm is not None and self.llm.budget_exhausted:
            u = self.llm.usage
            return f"the model budget is spent ({u.tokens:,} tokens, ${u.cost_usd:.4f})"
        if self.llm is not None and self.llm.breaker.reason is not None:
            return self.llm.breaker.reason
        return None

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()

    def run(self, work) -> Any:
        """Run one batch's coroutine on a fresh event loop, releasing its HTTP clients after."""
        from pipeline.llm import run_sync

        return run_sync(work, release=[self.llm] if self.llm is not None else [])

    # -- prompts -----------------------------------------------------------------------------
    def answer_type(self, case: str) -> type[BaseModel]:
        return answer_model(self.max_lessons, case == "judge")

    def choices(self, steps: pl.DataFrame) -> dict[str, list] | None:
        """Where the server's grammar holds them, the run's step numbers are the only steps a
        lesson can cite (elsewhere a lesson citing another is rejected after)."""
        if not self.grammar:
            return None
        return {"evidence_steps": sorted(steps.get_column("step_idx").to_list())}

    def values(self, case: str, trajectory: str, skill: str) -> dict[str, Any]:
        """Placeholder values shared by the prompts (see lessons-v1.md)."""
        p = self.prompt
        placement = p.text("placement_deepen" if self.sections is not None else "placement_create")
        return {
            "task": p.text(case),
            "format": p.text("format", max_lessons=self.max_lessons, placement=placement),
            "skill": skill,
            "trajectory": trajectory,
        }

    def skill_block(self, with_text: bool) -> str:
        """The base skill as the prompt shows it: its headings, and their text when asked (cut
        to `SKILL_TOKENS` in all, or to `SKILL_SHARE` of a small context window), or a note that
        the skill is being created."""
        if self.sections is None:
            return self.prompt.text("skill_none")
        room = int(SKILL_TOKENS * CHARS_PER_TOKEN)
        if self.context_tokens is not None:
            left = self.context_tokens - self.answer_tokens - MARGIN_TOKENS
            room = min(room, int(left * SKILL_SHARE * self.chars_per_token))
        if not with_text or room < 100 * len(self.sections):
            names = "\n".join(f"- {redact(s.heading)}" for s in self.sections)
            return self.prompt.text("skill_names", sections=names)
        bodies = [redact(s.body) or "" for s in self.sections]
        cap = max(room // max(len(bodies), 1), 200)
        if sum(len(b) for b in bodies) <= room:
            cap = max(len(b) for b in bodies) if bodies else 0
        blocks = [
            f"{'#' * s.level} {redact(s.heading)}\n{cut_middle(b, cap)}".rstrip()
            for s, b in zip(self.sections, bodies, strict=True)
        ]
        return self.prompt.text("skill_text", sections="\n\n".join(blocks))

    # -- answers -----------------------------------------------------------------------------
    def finish(
        self,
        row: Mapping[str, Any],
        steps: pl.DataFrame,
        case: str,
        answer: BaseModel,
        usage: AnalysisUsage,
        started,
        n_tool_calls: int | None = None,
    ) -> AnalysisResult:
        """The outcome of an answer: checked lessons, judgement, usage; an error when the model
        proposed lessons and every one was rejected."""
        judged = getattr(answer, "judgement", None)
        label = case if judged is None else f"judged_{judged.outcome}"
        checked = check_lessons(
            answer,
            steps=set(steps.get_column("step_idx").to_list()),
            max_lessons=self.max_lessons,
            headings=self.headings,
            rule=f"{self.name}:{label}",
        )
        outcome = AnalysisResult(
            row["trajectory_id"],
            checked.drafts,
            usage,
            None,
            started,
            now(),
            rejected=checked.rejected,
            n_tool_calls=n_tool_calls,
        )
        if judged is not None:
            outcome.judged_outcome = judged.outcome
            outcome.judge_reason = redact(judged.reason.strip()) or None
            outcome.judge_confidence = round(float(judged.confidence), 3)
        if answer.lessons and not checked.drafts:
            outcome.lessons = []
            outcome.error = "every lesson was rejected: " + "; ".join(checked.reasons[:3])
        return outcome


def positive_option(opts: Mapping[str, Any], key: str, default: int) -> int:
    value = opts.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{key} must be at least 1, got {number}")
    return number


async def gather_bounded(limit: int, coros: list) -> list:
    """Await coroutines at most `limit` at a time, results in order."""
    sem = asyncio.Semaphore(max(1, limit))

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))
