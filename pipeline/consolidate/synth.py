"""Synthetic lessons with a known structure, for tests and benchmarks of consolidation.

`synthetic_lessons(n)` returns `(trajectories, lessons)` frames that validate against their
tables. Lessons are drawn from topics (one piece of advice each, about one tool, for one section
of the airline policy), with a heavy-tailed popularity so some topics recur thousands of times and
many only once. Each lesson restates its topic in one of four ways, which is what consolidation
has to see through:

- exact: the topic's text with case, spacing and punctuation jitter (an exact duplicate once
  normalised);
- near: the same text with run-specific values (ids, counts, step numbers) changed;
- paraphrase: words swapped for synonyms and clauses reordered (a semantic duplicate);
- noise: a one-off lesson of its own topic (support 1, for the support filter to drop).

A share of topics have an opposite twin ("Do not ...") with less or equal weight, so the merge
tree has conflicts to resolve. `topic` and `variant` columns are returned beside the lessons
(drop them before writing) so a test can check clusters against the truth.
"""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

from pipeline import schemas
from pipeline.ids import digest

SECTIONS = {
    "Book flight": ["book_reservation", "search_direct_flight", "search_onestop_flight"],
    "Modify flight": [
        "update_reservation_flights",
        "update_reservation_baggages",
        "update_reservation_passengers",
    ],
    "Cancel flight": ["cancel_reservation", "get_reservation_details"],
    "Refund": ["send_certificate", "transfer_to_human_agents"],
    "Domain Basic": ["get_user_details", "list_all_airports", "calculate"],
}
FIELDS = [
    "membership tier",
    "payment method",
    "cabin class",
    "travel insurance",
    "baggage count",
    "passenger count",
    "flight status",
    "reservation date",
    "user id",
    "trip type",
    "date of birth",
    "origin airport",
    "destination airport",
    "gift card balance",
    "certificate amount",
    "fare difference",
]
CONDITIONS = [
    "the user asks to change cabin",
    "the flight is basic economy",
    "the reservation was made within 24 hours",
    "the user is a gold member",
    "the flight was cancelled by the airline",
    "the user has no insurance",
    "a segment has already flown",
    "the user asks for compensation",
    "the payment total does not match",
    "the user changes passengers",
    "the flight is delayed",
    "the user adds checked bags",
    "the trip is round trip",
    "the user gives a wrong reservation id",
    "two passengers share a booking",
    "the user wants a refund to a gift card",
    "the fare went up since booking",
    "the user asks for a human agent",
]
ARGS = [
    "payment_id",
    "cabin",
    "flight_type",
    "total_baggages",
    "nonfree_baggages",
    "insurance",
    "amount",
    "reason",
]
VALUES = [
    "economy",
    "business",
    "basic_economy",
    "one_way",
    "round_trip",
    "yes",
    "no",
    "0",
    "1",
    "2",
    "change_of_plan",
    "cancelled_by_airline",
]
TEMPLATES = [
    ("Call {tool_a} before {tool} to confirm the {field} when {cond}", "workflow"),
    ("Check the {field} before calling {tool} when {cond}", "failure_lesson"),
    ("Pass {arg}={value} to {tool} when {cond}", "failure_cause"),
    ("Ask the user for the {field} before calling {tool} when {cond}", "failure_lesson"),
    ("Confirm the {field} with the user before calling {tool} when {cond}", "success_lesson"),
    ("Look up the {field} with {tool_a} first, then call {tool} when {cond}", "workflow"),
]
SYNONYMS = {
    "Call": "Invoke",
    "before": "prior to",
    "confirm": "verify",
    "Check": "Verify",
    "user": "customer",
    "Ask": "Request from",
    "when": "in cases where",
    "first": "initially",
    "Confirm": "Double-check",
    "calling": "invoking",
    "Look up": "Fetch",
    "Pass": "Use",
}
RULES = {
    "workflow": "shared_path",
    "failure_lesson": "missing_check",
    "failure_cause": "wrong_argument",
    "success_lesson": "confirmation",
}
VARIANTS = ("exact", "near", "paraphrase")


def _topic(rng: random.Random, i: int) -> dict:
    section = rng.choice(sorted(SECTIONS))
    tool = rng.choice(SECTIONS[section])
    template, kind = TEMPLATES[i % len(TEMPLATES)]
    words = dict(
        tool=tool,
        tool_a=rng.choice(["get_user_details", "get_reservation_details", "search_direct_flight"]),
        field=rng.choice(FIELDS),
        cond=rng.choice(CONDITIONS),
        arg=rng.choice(ARGS),
        value=rng.choice(VALUES),
    )
    title = template.format(**words)
    content = (
        f"{title}. Runs that skipped this step failed with an error from {tool} "
        f"or a wrong final database state; runs that did it passed."
    )
    op = "revise" if rng.random() < 0.2 else "add"
    return dict(section=section, tool=tool, kind=kind, title=title, content=content, op=op)


def _negate(topic: dict) -> dict:
    title = "Do not " + topic["title"][0].lower() + topic["title"][1:]
    return topic | {
        "title": title,
        "content": f"{title}. Runs that did it anyway went wrong at {topic['tool']}.",
    }


def _revalue(rng: random.Random, topic: dict) -> dict:
    """The same advice with another value for its setting: a value conflict."""
    name, _, rest = topic["title"].partition("=")
    old = rest.split(" ", 1)[0]
    new = rng.choice([v for v in VALUES if v != old])
    title = topic["title"].replace(f"={old} ", f"={new} ", 1)
    return topic | {"title": title, "content": topic["content"].replace(topic["title"], title)}


def _jitter(rng: random.Random, text: str) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text.lower()
    if choice == 1:
        return text.replace(" ", "  ", 1)
    if choice == 2:
        return text.rstrip(".") + " ."
    return text


def _near(rng: random.Random, topic: dict) -> tuple[str, str]:
    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
    content = (
        f"{topic['content']} Seen at step {rng.randrange(3, 40)} "
        f"(reservation {code}, {rng.randrange(2, 9)} calls)."
    )
    title = topic["title"]
    if rng.random() < 0.5:
        title += f" (step {rng.randrange(3, 40)})"
    return title, content


def _paraphrase(rng: random.Random, topic: dict) -> tuple[str, str]:
    title = topic["title"]
    for word, other in SYNONYMS.items():
        if rng.random() < 0.6:
            title = title.replace(word, other)
    head, _, cond = title.partition(" when ")
    if cond and rng.random() < 0.5:
        title = f"When {cond}, {head[0].lower()}{head[1:]}"
    content = f"{title}. Doing so avoided the errors {topic['tool']} returned in other runs."
    return title, content


def synthetic_lessons(
    n_lessons: int,
    *,
    n_topics: int | None = None,
    noise: float = 0.08,
    conflicts: float = 0.05,
    lessons_per_run: int = 4,
    source: str = "synthetic",
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(trajectories, lessons)`; lessons carry extra `topic` and `variant` truth columns."""
    rng = random.Random(seed)
    n_topics = n_topics or max(20, n_lessons // 40)
    topics = [_topic(rng, i) for i in range(n_topics)]
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(n_topics)]
    for i in range(int(n_topics * conflicts)):
        topics.append(_negate(topics[i]))
        weights.append(weights[i] * rng.choice([0.3, 1.0]))
        j = n_topics - 1 - i
        if "=" in topics[j]["title"]:  # a rarer topic gets a value twin
            topics.append(_revalue(rng, topics[j]))
            weights.append(weights[j] * rng.choice([0.3, 1.0]))

    n_runs = max(1, n_lessons // lessons_per_run)
    n_tasks = max(1, n_runs // 4)
    models = ["gpt-4o", "claude-sonnet", "qwen-35b"]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    runs = pl.DataFrame(
        {
            "trajectory_id": [digest("synthetic-run", seed, r) for r in range(n_runs)],
            "source": source,
            "native_id": [str(r) for r in range(n_runs)],
            "task_id": [f"task-{rng.randrange(n_tasks)}" for _ in range(n_runs)],
            "model": [rng.choice(models) for _ in range(n_runs)],
            "agent": "synthetic",
            "outcome": [("failure" if rng.random() < 0.6 else "success") for _ in range(n_runs)],
            "outcome_origin": "source",
            "reward": None,
            "n_steps": [rng.randrange(5, 40) for _ in range(n_runs)],
            "meta": "{}",
            "file": "synthetic",
            "record": [str(r) for r in range(n_runs)],
            "file_sha256": "0" * 64,
            "format": "synthetic",
            "ingested_at": t0,
        }
    ).with_columns(pl.col("reward").cast(pl.Float64))
    run_ids = runs["trajectory_id"].to_list()
    failed = [i for i, o in enumerate(runs["outcome"]) if o == "failure"] or [0]
    passed = [i for i, o in enumerate(runs["outcome"]) if o == "success"] or [0]

    picks = rng.choices(range(len(topics)), weights=weights, k=n_lessons)
    rows = []
    for i, t in enumerate(picks):
        topic = topics[t]
        if rng.random() < noise:
            topic = _topic(rng, rng.randrange(len(TEMPLATES)))
            topic["title"] += f" (case {i})"
            topic["content"] += f" Only seen once, in run {i}."
            variant, t, title, content = "noise", -1 - i, topic["title"], topic["content"]
        else:
            variant = rng.choices(VARIANTS, weights=(0.4, 0.35, 0.25))[0]
            if variant == "exact":
                title, content = _jitter(rng, topic["title"]), _jitter(rng, topic["content"])
            elif variant == "near":
                title, content = _near(rng, topic)
            else:
                title, content = _paraphrase(rng, topic)
        pool = passed if topic["kind"] in ("success_lesson", "workflow") else failed
        run = pool[rng.randrange(len(pool))]
        analysis_id = digest("synthetic-analysis", run_ids[run])
        rows.append(
            (
                digest("synthetic-lesson", seed, i),
                analysis_id,
                run_ids[run],
                topic["kind"],
                title,
                content,
                topic["section"],
                topic["tool"],
                RULES[topic["kind"]],
                topic.get("op", "add"),
                "single" if i % 10 == 0 else "miner",
                t,
                variant,
                i,
            )
        )
    cols = [
        "lesson_id",
        "analysis_id",
        "trajectory_id",
        "kind",
        "title",
        "content",
        "target_section",
        "tool_name",
        "rule",
        "op",
        "analyst",
        "topic",
        "variant",
        "seq",
    ]
    lessons = pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        description=pl.lit(None, pl.String),
        evidence_steps=pl.concat_list(pl.col("seq").cast(pl.Int64) % 30),
        model=pl.lit("offline"),
        prompt_version=pl.lit("synthetic-1"),
        confidence=pl.lit(0.8),
        created_at=pl.lit(t0) + pl.duration(seconds=pl.col("seq")),
    )
    order = list(schemas.table("lessons").columns)
    return runs, lessons.select(order + ["topic", "variant"])


def write_synthetic(lake, n_lessons: int, *, part_rows: int = 200_000, **options) -> pl.DataFrame:
    """Write synthetic trajectories and lessons into `lake`; returns the lessons with truth."""
    runs, lessons = synthetic_lessons(n_lessons, **options)
    source = runs["source"][0]
    lake.write_part("trajectories", runs, part="synthetic", partition={"source": source})
    table = lessons.drop("topic", "variant")
    for k, start in enumerate(range(0, table.height, part_rows)):
        lake.write_part("lessons", table.slice(start, part_rows), part=f"synthetic-{k:04d}")
    return lessons
