"""A hand-built lake whose coverage answers are known.

Eight runs were used to build the skill (sources airline and retail) and three are held out
(source airline-new). Two consolidation runs exist: r0 (older, small) and r1 (the newest).

    run  source   task model  outcome  lessons (r1 fate)                      tools called
    T1   airline  t1   gpt-4o failure  L1a merged, L1b dropped(support)       get_user, update_reservation
    T2   airline  t1   claude failure  L2a deduplicated(L1a), L2b merged       get_user, update_reservation
    T3   airline  t2   gpt-4o failure  L3a merged (via its cluster only)       search_flights (unanswered)
    T4   retail   t3   gpt-4o failure  L4a dropped(merge), L4b unaccounted    cancel_order (result by id)
    T5   retail   t3   claude failure  none                                   none
    T6   airline  t1   gpt-4o success  L6a merged                             get_user, update_reservation
    T7   retail   t4   claude success  L7a dropped(support)                   get_order
    T8   retail   t4   gpt-4o failure  L8a (not read by any run)              get_order
    H1   airline-new t2 gpt-4o failure LH1: near copy of C2's lesson           search_flights
    H2   airline-new t5 claude failure LH2: nothing like the skill             cancel_order
    H3   airline-new t1 gpt-4o success LH3: near copy of C5's workflow         get_user

r1 skill (clusters kept: C1, C2, C3, C5, C7; not kept: C4, C6):
    SKILL.md:3  Reservations        clusters [C1] lessons [L1a]   -> L1a, L2a, L2b (T1, T2)
    SKILL.md:4  Reservations        base line
    SKILL.md:6  Search              clusters [C2] lessons []      -> L3a (T3)
    SKILL.md:7  Search              revised, nothing behind it (a provenance gap)
    references/workflows.md:2  Changing a flight  [C5] [L6a]      -> L6a (T6)
C3 was dropped at merge node N1 (and recorded again at lint); C7's patch op missed its anchor and no drop row was written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipeline import schemas
from pipeline.lake import Lake

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """Rows with every unspecified column filled with a neutral value for its type."""
    spec = schemas.table(table)
    model = spec.model.to_schema().columns
    filled = []
    for row in rows:
        full = {}
        for col, dtype in spec.columns.items():
            if col in row:
                full[col] = row[col]
            elif model[col].nullable:
                full[col] = None
            elif isinstance(dtype, pl.List):
                full[col] = []
            elif dtype == pl.String:
                full[col] = "-"
            elif dtype == pl.Boolean:
                full[col] = False
            elif isinstance(dtype, pl.Datetime):
                full[col] = T0
            else:
                full[col] = 0
        filled.append(full)
    return schemas.validate(table, pl.DataFrame(filled, schema=spec.columns))


TRAJECTORIES = [
    # id, source, task, model, outcome
    ("T1", "airline", "t1", "gpt-4o", "failure"),
    ("T2", "airline", "t1", "claude", "failure"),
    ("T3", "airline", "t2", "gpt-4o", "failure"),
    ("T4", "retail", "t3", "gpt-4o", "failure"),
    ("T5", "retail", "t3", "claude", "failure"),
    ("T6", "airline", "t1", "gpt-4o", "success"),
    ("T7", "retail", "t4", "claude", "success"),
    ("T8", "retail", "t4", "gpt-4o", "failure"),
    ("H1", "airline-new", "t2", "gpt-4o", "failure"),
    ("H2", "airline-new", "t5", "claude", "failure"),
    ("H3", "airline-new", "t1", "gpt-4o", "success"),
]
HELD_OUT_WHERE = "source = 'airline-new'"

# Tool calls per run: (tool, how it is answered: "ok", "error", "by_id" or None = never).
CALLS = {
    "T1": [("get_user", "ok"), ("update_reservation", "error")],
    "T2": [("get_user", "ok"), ("update_reservation", "error")],
    "T3": [("search_flights", None)],
    "T4": [("cancel_order", "by_id"), ("cancel_order", "ok")],
    "T5": [],
    "T6": [("get_user", "ok"), ("update_reservation", "ok")],
    "T7": [("get_order", "ok")],
    "T8": [("get_order", "error")],
    "H1": [("search_flights", "error")],
    "H2": [("cancel_order", "ok")],
    "H3": [("get_user", "ok")],
}

C1_TITLE = "Look up the user before updating a reservation"
C1_TEXT = (
    "Call get_user_details for the user before update_reservation_flights; "
    "the update fails for an unknown user id."
)
C2_TITLE = "Pass dates to search_flights as YYYY-MM-DD"
C2_TEXT = "search_flights rejects dates like 05/15/2024; format the date as 2024-05-15."
C5_TITLE = "Change a flight: look up the user, then update the reservation"
C5_TEXT = (
    "Workflow that succeeded: get_user_details, then update_reservation_flights, then confirm."
)

LESSONS = [
    # id, trajectory, kind, tool, title, content, confidence
    ("L1a", "T1", "failure_lesson", "update_reservation", C1_TITLE, C1_TEXT, 0.9),
    (
        "L1b",
        "T1",
        "failure_cause",
        "update_reservation",
        "Unknown user id",
        "The update failed: unknown user id.",
        0.3,
    ),
    ("L2a", "T2", "failure_lesson", "update_reservation", C1_TITLE, C1_TEXT, 0.9),
    (
        "L2b",
        "T2",
        "failure_lesson",
        "get_user",
        "Fetch the user's details before changing a booking",
        "Changing a booking needs the user's details first.",
        0.8,
    ),
    ("L3a", "T3", "failure_lesson", "search_flights", C2_TITLE, C2_TEXT, 0.9),
    (
        "L4a",
        "T4",
        "failure_lesson",
        "cancel_order",
        "Confirm with the user before cancelling an order",
        "The agent cancelled without asking.",
        0.7,
    ),
    (
        "L4b",
        "T4",
        "failure_cause",
        "cancel_order",
        "cancel_order was called twice",
        "The second call failed.",
        0.6,
    ),
    ("L6a", "T6", "workflow", None, C5_TITLE, C5_TEXT, 0.9),
    (
        "L7a",
        "T7",
        "success_lesson",
        "get_order",
        "Read the order before answering",
        "The agent read the order first.",
        0.4,
    ),
    (
        "L8a",
        "T8",
        "failure_lesson",
        "get_order",
        "Look the order up by its id",
        "get_order needs the order id, not the user id.",
        0.8,
    ),
    (
        "LH1",
        "H1",
        "failure_lesson",
        "search_flights",
        C2_TITLE,
        "search_flights rejects dates like 06/01/2024; format the date as 2024-06-01.",
        0.9,
    ),
    (
        "LH2",
        "H2",
        "failure_lesson",
        "cancel_order",
        "Refund cancelled orders to the original payment method",
        "A refund must go back to the card the order was paid with.",
        0.8,
    ),
    (
        "LH3",
        "H3",
        "workflow",
        None,
        C5_TITLE,
        "Workflow that succeeded: get_user_details, then update_reservation_flights, then confirm with the user.",
        0.9,
    ),
]

# r1: cluster id -> (kept, title, content, members as (lesson, stage, representative, similarity))
R1_CLUSTERS = {
    "C1": (
        True,
        C1_TITLE,
        C1_TEXT,
        [
            ("L1a", "exact", "L1a", 1.0),
            ("L2a", "exact", "L1a", 1.0),
            ("L2b", "semantic", "L1a", 0.81),
        ],
    ),
    "C2": (True, C2_TITLE, C2_TEXT, [("L3a", "singleton", "L3a", 1.0)]),
    "C3": (
        True,
        "Confirm with the user before cancelling an order",
        "The agent cancelled without asking.",
        [("L4a", "singleton", "L4a", 1.0)],
    ),
    "C4": (
        False,
        "Unknown user id",
        "The update failed: unknown user id.",
        [("L1b", "singleton", "L1b", 1.0)],
    ),
    "C5": (True, C5_TITLE, C5_TEXT, [("L6a", "singleton", "L6a", 1.0)]),
    "C6": (
        False,
        "Read the order before answering",
        "The agent read the order first.",
        [("L7a", "singleton", "L7a", 1.0)],
    ),
    "C7": (
        True,
        "cancel_order was called twice",
        "The second call failed.",
        [("L4b", "singleton", "L4b", 1.0)],
    ),
}
R1_DROPPED = [
    # lesson, cluster, stage, reason, node
    ("L1b", "C4", "support", "confidence 0.3 below 0.5", None),
    ("L7a", "C6", "support", "confidence 0.4 below 0.5", None),
    ("L4a", "C3", "merge", "conflicts with a stronger lesson", "N1"),
    # dropped twice: its fate names the first stage in pipeline order (merge)
    ("L4a", "C3", "lint", "a later stage", None),
]
# file, line_no, section, text, origin, clusters, lessons, stored n_trajectories
R1_LINES = [
    ("SKILL.md", 1, None, "# Airline agent", "base", [], [], 0),
    ("SKILL.md", 2, "Reservations", "## Reservations", "base", [], [], 0),
    ("SKILL.md", 3, "Reservations", f"- {C1_TITLE}.", "added", ["C1"], ["L1a"], 2),
    ("SKILL.md", 4, "Reservations", "- Be polite.", "base", [], [], 0),
    ("SKILL.md", 5, "Search", "## Search", "base", [], [], 0),
    ("SKILL.md", 6, "Search", f"- {C2_TITLE}.", "added", ["C2"], [], 1),
    # revised by the run with nothing behind it: a provenance gap
    ("SKILL.md", 7, "Search", "- Never guess a date.", "revised", [], [], 0),
    ("references/workflows.md", 1, "Changing a flight", "## Changing a flight", "added", [], [], 0),
    (
        "references/workflows.md",
        2,
        "Changing a flight",
        f"- {C5_TITLE}.",
        "added",
        ["C5"],
        ["L6a"],
        1,
    ),
]


def _steps(tid: str, source: str) -> list[dict]:
    rows = [
        {
            "trajectory_id": tid,
            "source": source,
            "step_idx": 0,
            "role": "user",
            "kind": "message",
            "content": "help me",
        }
    ]
    for n, (tool, answer) in enumerate(CALLS[tid]):
        idx = len(rows)
        call_id = f"{tid}-c{n}"
        rows.append(
            {
                "trajectory_id": tid,
                "source": source,
                "step_idx": idx,
                "message_idx": idx,
                "role": "assistant",
                "kind": "tool_call",
                "tool_name": tool,
                "tool_args": '{"id": 1}',
                "tool_call_id": call_id,
            }
        )
        if answer is not None:
            rows.append(
                {
                    "trajectory_id": tid,
                    "source": source,
                    "step_idx": idx + 1,
                    "message_idx": idx + 1,
                    "role": "tool",
                    "kind": "tool_result",
                    "tool_name": tool,
                    "content": "Error: failed" if answer == "error" else "ok",
                    "tool_call_id": call_id,
                    "call_step_idx": None if answer == "by_id" else idx,
                    "is_error": answer == "error",
                }
            )
    return rows


def build(lake: Lake, skill_dir: Path, *, only_held_out: bool = False) -> None:
    """Write the fixture lake; with only_held_out, just the H runs and their lessons (a new batch)."""
    wanted = [t for t in TRAJECTORIES if (t[1] == "airline-new") or not only_held_out]
    for source in sorted({t[1] for t in wanted}):
        runs = [t for t in wanted if t[1] == source]
        lake.write_part(
            "trajectories",
            frame(
                "trajectories",
                [
                    {
                        "trajectory_id": tid,
                        "source": src,
                        "native_id": tid.lower(),
                        "task_id": task,
                        "model": model,
                        "agent": "tau-bench",
                        "outcome": outcome,
                        "outcome_origin": "source",
                        "reward": 1.0 if outcome == "success" else 0.0,
                        "n_steps": len(_steps(tid, src)),
                        "meta": "{}",
                        "file": f"{src}.json",
                        "record": tid,
                    }
                    for tid, src, task, model, outcome in runs
                ],
            ),
            part="fixture",
            partition={"source": source},
        )
        lake.write_part(
            "steps",
            frame("steps", [s for tid, *_ in runs for s in _steps(tid, source)]),
            part="fixture",
            partition={"source": source},
        )
    ids = {t[0] for t in wanted}
    lake.write_part(
        "lessons",
        frame(
            "lessons",
            [
                {
                    "lesson_id": lid,
                    "analysis_id": f"A-{tid}",
                    "trajectory_id": tid,
                    "kind": kind,
                    "title": title,
                    "content": content,
                    "target_section": None,
                    "op": "add",
                    "evidence_steps": [1],
                    "tool_name": tool,
                    "rule": kind,
                    "analyst": "miner",
                    "model": "offline",
                    "prompt_version": "m1",
                    "confidence": conf,
                }
                for lid, tid, kind, tool, title, content, conf in LESSONS
                if tid in ids
            ],
        ),
        part="fixture",
    )
    if only_held_out:
        return
    _write_runs(lake, skill_dir)
    _write_calls(lake)
    write_skill_folder(skill_dir)


def write_skill_folder(skill_dir: Path) -> None:
    """The r1 skill as written: every skill_lines row at its line."""
    for file in ("SKILL.md", "references/workflows.md"):
        lines = [text for f, _, _, text, *_ in R1_LINES if f == file]
        path = skill_dir / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


def _write_runs(lake: Lake, skill_dir: Path) -> None:
    runs = {
        "r0": {
            "created_at": T0 + dt.timedelta(days=1),
            "out_dir": str(skill_dir.parent / "old-skill"),
            "n_lessons": 3,
            "n_clusters": 2,
            "n_kept": 1,
            "n_skill_lines": 1,
        },
        "r1": {
            "created_at": T0 + dt.timedelta(days=2),
            "out_dir": str(skill_dir),
            "n_lessons": 9,
            "n_clusters": 7,
            "n_kept": 5,
            "n_skill_lines": 3,
        },
    }
    for run_id, values in runs.items():
        lake.write_part(
            "consolidations",
            frame(
                "consolidations",
                [
                    {
                        "run_id": run_id,
                        "mode": "parallel",
                        "model": "offline",
                        "settings": '{"fan_in": 5}',
                        "lint_ok": True,
                        **values,
                    }
                ],
            ),
            part="0",
            partition={"run_id": run_id},
        )

    # r0: an older, smaller run that only knew C1 and dropped L3a.
    r0 = {
        "clusters": [
            {
                "run_id": "r0",
                "cluster_id": "C1",
                "kind": "failure_lesson",
                "medoid_lesson_id": "L1a",
                "title": C1_TITLE,
                "content": C1_TEXT,
                "cited_lesson_ids": ["L1a"],
                "n_lessons": 2,
                "n_trajectories": 2,
                "n_tasks": 1,
                "n_failures": 2,
                "n_models": 2,
                "n_analysts": 1,
                "kept": True,
            },
            {
                "run_id": "r0",
                "cluster_id": "C2",
                "kind": "failure_lesson",
                "medoid_lesson_id": "L3a",
                "title": C2_TITLE,
                "content": C2_TEXT,
                "cited_lesson_ids": ["L3a"],
                "n_lessons": 1,
                "n_trajectories": 1,
                "n_tasks": 1,
                "n_failures": 1,
                "n_models": 1,
                "n_analysts": 1,
                "kept": False,
            },
        ],
        "cluster_members": [
            {
                "run_id": "r0",
                "lesson_id": "L1a",
                "cluster_id": "C1",
                "stage": "exact",
                "representative_lesson_id": "L1a",
                "similarity": 1.0,
            },
            {
                "run_id": "r0",
                "lesson_id": "L2a",
                "cluster_id": "C1",
                "stage": "exact",
                "representative_lesson_id": "L1a",
                "similarity": 1.0,
            },
            {
                "run_id": "r0",
                "lesson_id": "L3a",
                "cluster_id": "C2",
                "stage": "singleton",
                "representative_lesson_id": "L3a",
                "similarity": 1.0,
            },
        ],
        "skill_lines": [
            {
                "run_id": "r0",
                "file": "SKILL.md",
                "line_no": 3,
                "section": "Reservations",
                "text": f"- {C1_TITLE}.",
                "origin": "added",
                "cluster_ids": ["C1"],
                "lesson_ids": ["L1a", "L2a"],
                "merge_node_id": "N0",
                "n_trajectories": 2,
                "n_tasks": 1,
                "n_failures": 2,
            }
        ],
        "dropped": [
            {
                "run_id": "r0",
                "lesson_id": "L3a",
                "cluster_id": "C2",
                "stage": "support",
                "reason": "support 1 below min_support 2",
            }
        ],
        "merge_nodes": [
            {
                "run_id": "r0",
                "node_id": "N0",
                "level": 0,
                "section": "Reservations",
                "n_inputs": 1,
                "patch": "[]",
                "conflicts": "[]",
                "model": "offline",
            }
        ],
        "merge_edges": [
            {
                "run_id": "r0",
                "parent_node_id": "N0",
                "child_id": "C1",
                "child_kind": "cluster",
                "carried": True,
            }
        ],
    }
    members = [
        (cid, lid, stage, rep, sim)
        for cid, (_, _, _, ms) in R1_CLUSTERS.items()
        for lid, stage, rep, sim in ms
    ]
    trajectory_of = {lid: tid for lid, tid, *_ in LESSONS}
    outcome_of = {t[0]: t[4] for t in TRAJECTORIES}
    r1_clusters = []
    for cid, (kept, title, content, ms) in R1_CLUSTERS.items():
        tids = {trajectory_of[m[0]] for m in ms}
        r1_clusters.append(
            {
                "run_id": "r1",
                "cluster_id": cid,
                "kind": "failure_lesson",
                "medoid_lesson_id": ms[0][0],
                "title": title,
                "content": content,
                "cited_lesson_ids": [m[0] for m in ms],
                "n_lessons": len(ms),
                "n_trajectories": len(tids),
                "n_tasks": 1,
                "n_failures": sum(outcome_of[t] == "failure" for t in tids),
                "n_successes": sum(outcome_of[t] == "success" for t in tids),
                "n_models": 1,
                "n_analysts": 1,
                "kept": kept,
            }
        )
    r1 = {
        "clusters": r1_clusters,
        "cluster_members": [
            {
                "run_id": "r1",
                "lesson_id": lid,
                "cluster_id": cid,
                "stage": stage,
                "representative_lesson_id": rep,
                "similarity": sim,
            }
            for cid, lid, stage, rep, sim in members
        ],
        "skill_lines": [
            {
                "run_id": "r1",
                "file": f,
                "line_no": n,
                "section": sec,
                "text": text,
                "origin": origin,
                "cluster_ids": cids,
                "lesson_ids": lids,
                "merge_node_id": None if origin == "base" else "N3",
                "n_trajectories": ntraj,
            }
            for f, n, sec, text, origin, cids, lids, ntraj in R1_LINES
        ],
        "dropped": [
            {
                "run_id": "r1",
                "lesson_id": lid,
                "cluster_id": cid,
                "stage": stage,
                "reason": reason,
                "node_id": node,
            }
            for lid, cid, stage, reason, node in R1_DROPPED
        ],
        "merge_nodes": [
            {
                "run_id": "r1",
                "node_id": n,
                "level": lvl,
                "section": sec,
                "n_inputs": k,
                "patch": "[]",
                "conflicts": conflicts,
                "model": "offline",
            }
            for n, lvl, sec, k, conflicts in [
                ("N1", 0, "Reservations", 3, '[{"dropped": "C3"}]'),
                ("N2", 0, None, 2, "[]"),
                ("N3", 1, None, 2, "[]"),
            ]
        ],
        "merge_edges": [
            {
                "run_id": "r1",
                "parent_node_id": p,
                "child_id": c,
                "child_kind": kind,
                "carried": carried,
                "reason": reason,
            }
            for p, c, kind, carried, reason in [
                ("N1", "C1", "cluster", True, None),
                ("N1", "C2", "cluster", True, None),
                ("N1", "C3", "cluster", False, "conflicts with a stronger lesson"),
                ("N2", "C5", "cluster", True, None),
                ("N2", "C7", "cluster", True, None),
                ("N3", "N1", "node", True, None),
                ("N3", "N2", "node", True, None),
            ]
        ],
        "patch_ops": [
            {
                "run_id": "r1",
                "op_id": f"P{seq}",
                "seq": seq,
                "op": op,
                "file": f,
                "section": sec,
                "anchor": anchor,
                "text": "-",
                "cluster_ids": cids,
                "status": status,
                "message": msg,
            }
            for seq, op, f, sec, anchor, cids, status, msg in [
                (0, "append", "SKILL.md", "Reservations", None, ["C1"], "applied", None),
                (1, "append", "SKILL.md", "Search", None, ["C2"], "applied", None),
                (2, "create_file", "references/workflows.md", None, None, ["C5"], "applied", None),
                (
                    3,
                    "insert_after",
                    "SKILL.md",
                    "Orders",
                    "## Orders",
                    ["C7"],
                    "anchor_missing",
                    "anchor not found",
                ),
            ]
        ],
    }
    for run_id, tables in (("r0", r0), ("r1", r1)):
        for table, rows in tables.items():
            lake.write_part(table, frame(table, rows), part="0", partition={"run_id": run_id})


def _write_calls(lake: Lake) -> None:
    rows = [
        # key, stage, kind, model, tokens in/out, latency, cost, attempts, error, cache hit
        ("k1", "analyse", "chat", "gpt-4o-mini", 1000, 200, 900.0, 0.00027, 1, None, False),
        ("k2", "analyse", "chat", "gpt-4o-mini", 0, 0, 2.0, 0.0, 0, None, True),
        (
            "k3",
            "analyse",
            "chat",
            "gpt-4o-mini",
            0,
            0,
            3100.0,
            0.0,
            3,
            "HTTP 500 after 3 attempts",
            False,
        ),
        ("k4", "summarise", "chat", "gpt-4o", 2000, 300, 1500.0, 0.008, 1, None, False),
        ("k5", "merge", "chat", "gpt-4o", 3000, 500, 2500.0, 0.0125, 2, None, False),
        (
            "k6",
            "embed",
            "embedding",
            "text-embedding-3-small",
            500,
            0,
            120.0,
            0.00001,
            1,
            None,
            False,
        ),
    ]
    lake.write_part(
        "llm_calls",
        frame(
            "llm_calls",
            [
                {
                    "call_id": f"{key}-0",
                    "key": key,
                    "stage": stage,
                    "kind": kind,
                    "model": model,
                    "params": "{}",
                    "request": "{}",
                    "response": None if error else "{}",
                    "tokens_in": tin,
                    "tokens_out": tout,
                    "latency_ms": lat,
                    "cost_usd": cost,
                    "attempts": att,
                    "error": error,
                    "cache_hit": hit,
                }
                for key, stage, kind, model, tin, tout, lat, cost, att, error, hit in rows
            ],
        ),
        part="fixture",
    )
