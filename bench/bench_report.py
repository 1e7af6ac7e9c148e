"""Coverage, report, warehouse and drift at scale, and the drift threshold's calibration.

A synthetic lake (4 lessons per run, 20 lessons per cluster, a third of the clusters dropped for
support, 500 statements, the rest dropped at merge) is coverage's worst case: every lesson is read,
most are dropped, every one needs its fate. Figures sit beside a reference measured in the same
run: the plain DuckDB join of lessons to their runs and clusters over the same Parquet (the least
any coverage must read), and the embedding of the same texts (the floor of drift matching).

size small: 20k lessons; full: 1M lessons.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bench.run import Measurement
from pipeline import schemas
from pipeline import sql as sqlfiles
from pipeline.lake import Lake
from pipeline.llm.embed import get_embedder
from pipeline.report import drift
from pipeline.report.coverage import coverage
from pipeline.report.html import write_report
from pipeline.report.views import build_warehouse, connect_views

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
N_STATEMENTS = 500
TOOLS = 20


def _complete(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Add every column the generator left out, typed, with a neutral value."""
    spec = schemas.table(table)
    nullable = {c: col.nullable for c, col in spec.model.to_schema().columns.items()}
    fill = []
    for col, dtype in spec.columns.items():
        if col in df.columns:
            fill.append(pl.col(col).cast(dtype))
        elif nullable[col]:
            fill.append(pl.lit(None, dtype).alias(col))
        elif isinstance(dtype, pl.List):
            fill.append(pl.lit([], dtype).alias(col))
        elif dtype == pl.String:
            fill.append(pl.lit("-").alias(col))
        elif dtype == pl.Boolean:
            fill.append(pl.lit(False).alias(col))
        elif isinstance(dtype, pl.Datetime):
            fill.append(pl.lit(T0, dtype).alias(col))
        else:
            fill.append(pl.lit(0, dtype).alias(col))
    return df.select(fill)


def build_lake(root: Path, n_lessons: int) -> Lake:
    lake = Lake(root)
    n_runs = n_lessons // 4
    n_clusters = max(n_lessons // 20, N_STATEMENTS * 3)
    i = pl.int_range(n_runs, eager=True).alias("i").to_frame()
    runs = i.select(
        trajectory_id=pl.format("t{}", "i"),
        source=pl.lit("synthetic"),
        task_id=pl.format("task{}", pl.col("i") % max(n_runs // 4, 1)),
        model=pl.format("model{}", pl.col("i") % 3),
        outcome=pl.when(pl.col("i") % 5 < 3).then(pl.lit("failure")).otherwise(pl.lit("success")),
        outcome_origin=pl.lit("source"),
        n_steps=pl.lit(4),
        meta=pl.lit("{}"),
    )
    lake.write_part(
        "trajectories", _complete("trajectories", runs), part="0", partition={"source": "synthetic"}
    )
    s = pl.int_range(n_runs * 4, eager=True).alias("s").to_frame()
    steps = s.select(
        trajectory_id=pl.format("t{}", pl.col("s") // 4),
        source=pl.lit("synthetic"),
        step_idx=pl.col("s") % 4,
        message_idx=pl.col("s") % 4,
        role=pl.when(pl.col("s") % 2 == 0).then(pl.lit("assistant")).otherwise(pl.lit("tool")),
        kind=pl.when(pl.col("s") % 2 == 0)
        .then(pl.lit("tool_call"))
        .otherwise(pl.lit("tool_result")),
        tool_name=pl.format("tool_{}", (pl.col("s") // 2) % TOOLS),
        call_step_idx=pl.when(pl.col("s") % 2 == 1).then(pl.col("s") % 4 - 1),
        is_error=(pl.col("s") % 7 == 1),
    )
    lake.write_part("steps", _complete("steps", steps), part="0", partition={"source": "synthetic"})
    n = pl.int_range(n_lessons, eager=True).alias("n").to_frame()
    lessons = n.select(
        lesson_id=pl.format("l{}", "n"),
        analysis_id=pl.format("a{}", (pl.col("n") * 7919) % n_runs),
        trajectory_id=pl.format("t{}", (pl.col("n") * 7919) % n_runs),
        kind=pl.lit("failure_lesson"),
        title=pl.format("Check tool_{} arguments (rule {})", pl.col("n") % TOOLS, pl.col("n") % 9),
        content=pl.format("The run called tool_{} wrongly; case {}.", pl.col("n") % TOOLS, "n"),
        op=pl.lit("add"),
        tool_name=pl.format("tool_{}", pl.col("n") % TOOLS),
        analyst=pl.lit("miner"),
        model=pl.lit("offline"),
        prompt_version=pl.lit("m1"),
        confidence=pl.lit(0.8),
    )
    lake.write_part("lessons", _complete("lessons", lessons), part="0", validate=False)
    members = n.select(
        run_id=pl.lit("bench"),
        lesson_id=pl.format("l{}", "n"),
        cluster_id=pl.format("c{}", pl.col("n") % n_clusters),
        stage=pl.when(pl.col("n") < n_clusters).then(pl.lit("singleton")).otherwise(pl.lit("near")),
        representative_lesson_id=pl.format("l{}", pl.col("n") % n_clusters),
        similarity=pl.lit(0.9),
    )
    c = pl.int_range(n_clusters, eager=True).alias("c").to_frame()
    clusters = c.select(
        run_id=pl.lit("bench"),
        cluster_id=pl.format("c{}", "c"),
        kind=pl.lit("failure_lesson"),
        medoid_lesson_id=pl.format("l{}", "c"),
        title=pl.format("Check tool_{} arguments (rule {})", pl.col("c") % TOOLS, pl.col("c") % 9),
        content=pl.format("The run called tool_{} wrongly; case {}.", pl.col("c") % TOOLS, "c"),
        n_lessons=pl.lit(max(n_lessons // n_clusters, 1)),
        kept=pl.col("c") % 3 != 0,
    )
    in_skill = pl.col("c") % 3 != 0
    lines = (
        c.filter(in_skill)
        .head(N_STATEMENTS)
        .with_row_index("k")
        .select(
            run_id=pl.lit("bench"),
            file=pl.lit("SKILL.md"),
            line_no=pl.col("k").cast(pl.Int64) + 1,
            section=pl.format("Section {}", pl.col("k") // 25),
            text=pl.format("- statement {}", "k"),
            origin=pl.lit("added"),
            cluster_ids=pl.concat_list(pl.format("c{}", "c")),
        )
    )
    reached = set(lines["cluster_ids"].list.first().to_list())
    dropped = members.filter(~pl.col("cluster_id").is_in(list(reached))).select(
        "run_id",
        "lesson_id",
        "cluster_id",
        stage=pl.lit("support"),
        reason=pl.lit("below min_support"),
    )
    consolidation = pl.DataFrame({"run_id": ["bench"], "mode": ["parallel"], "model": ["offline"]})
    for table, df in (
        ("consolidations", consolidation),
        ("clusters", clusters),
        ("cluster_members", members),
        ("skill_lines", lines),
        ("dropped", dropped),
    ):
        lake.write_part(
            table, _complete(table, df), part="0", partition={"run_id": "bench"}, validate=False
        )
    return lake


def _timed(fn, repeat: int = 1):
    """Best wall time of `repeat` runs (the machine may be shared), and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def calibration() -> dict[str, float]:
    """Cosine of lessons written from tau-bench gold actions with three templates."""
    runs = json.loads((ROOT / "data/tau-bench-airline/gpt-4o-airline.json").read_text())
    acts = [
        (a["name"], json.dumps(a["kwargs"])[:120], r["info"]["task"]["user_id"])
        for r in runs
        for a in r["info"]["task"]["actions"]
    ]
    templates = {
        "missing": "Call {t} when the task requires it\nThe run never called {t}; the gold "
        "actions include {t}({k}) for user {u}.",
        "wrongarg": "Check the arguments of {t} against the user's request\n{t} was called "
        "with different arguments than required: expected {k}.",
        "error": "Recover from {t} errors by re-reading the reservation\n{t} returned an error "
        "for user {u}; the agent retried without changing the arguments.",
    }
    rng = random.Random(0)
    texts = [
        (rule, name, tpl.format(t=name, k=k, u=u))
        for rule, tpl in templates.items()
        for name, k, u in rng.sample(acts, 60)
    ]
    vecs = get_embedder("lexical").embed([t for *_, t in texts])
    sims = vecs @ vecs.T
    same, other_tool, other_rule = [], [], []
    for a, b in itertools.combinations(range(len(texts)), 2):
        (r1, n1, _), (r2, n2, _) = texts[a], texts[b]
        bucket = same if (r1, n1) == (r2, n2) else other_tool if r1 == r2 else other_rule
        if r1 == r2 or n1 == n2:
            bucket.append(sims[a, b])
    return {
        "same rule and tool, 5th percentile": float(np.percentile(same, 5)),
        "same rule, other tool, 99th percentile": float(np.percentile(other_tool, 99)),
        "other rule, same tool, max": float(np.max(other_rule)),
    }


def run(size: str, workdir: Path) -> list[Measurement]:
    n_lessons = 20_000 if size == "small" else 1_000_000
    n_new = 5_000 if size == "small" else 50_000
    out: list[Measurement] = []
    build_s, lake = _timed(lambda: build_lake(workdir / "lake", n_lessons))

    con = connect_views(lake)
    ref_s, _ = _timed(
        lambda: con.sql(
            "select l.trajectory_id, count(*) from lessons l join cluster_members m "
            "using (lesson_id) join trajectories t using (trajectory_id) group by 1"
        ).fetchall(),
        repeat=3,
    )
    con.close()
    cov_s, cov = _timed(lambda: coverage(lake), repeat=2)
    out.append(
        Measurement(
            "report",
            f"coverage of {n_lessons:,} lessons",
            cov_s,
            "s",
            "DuckDB join lessons-members-runs",
            ref_s,
            notes=f"{cov.summary['lessons_read']:,} fates, {cov.summary['statements']} statements; "
            f"lake written in {build_s:.1f}s",
        )
    )
    html_s, path = _timed(lambda: write_report(lake, workdir / "report.html", coverage_result=cov))
    out.append(
        Measurement(
            "report",
            "render report.html",
            html_s,
            "s",
            "coverage it draws",
            cov_s,
            notes=f"{path.stat().st_size / 1024:.0f} KiB",
        )
    )
    wh_s, wh = _timed(lambda: build_warehouse(lake, workdir / "w.duckdb"))
    fate_q = "select fate, count(*) from lesson_fate group by 1"
    con = connect_views(lake)
    live_s, _ = _timed(lambda: con.sql(fate_q).fetchall(), repeat=2)
    con.close()
    con = duckdb.connect(str(wh), read_only=True)
    wh_q_s, _ = _timed(lambda: con.sql(fate_q).fetchall(), repeat=2)
    con.close()
    out.append(
        Measurement(
            "report",
            "build warehouse file",
            wh_s,
            "s",
            "connect_views (in memory)",
            _timed(lambda: connect_views(lake).close())[0],
            notes=f"{wh.stat().st_size / 1024:.0f} KiB",
        )
    )
    out.append(
        Measurement(
            "report",
            "lesson fates counted through the warehouse file",
            wh_q_s,
            "s",
            "same query through connect_views",
            live_s,
        )
    )

    con = connect_views(lake)
    targets = sqlfiles.query(con, "coverage_skill_targets", run_id=cov.run["run_id"])
    con.close()
    queries = [
        f"Check tool_{k % TOOLS} arguments (rule {k % 11})\nThe run called tool_{k % TOOLS} "
        f"wrongly; case {k}."
        for k in range(n_new)
    ]
    target_texts = (targets["title"] + "\n" + targets["content"]).to_list()
    match_s, (_, sim) = _timed(lambda: drift.best_matches(queries, target_texts), repeat=2)
    embed_s, _ = _timed(lambda: get_embedder("lexical").embed(queries + target_texts), repeat=2)
    out.append(
        Measurement(
            "report",
            f"drift: match {n_new:,} new lessons to {len(target_texts)} consolidated lessons",
            n_new / match_s,
            "lessons/s",
            "embedding alone",
            n_new / embed_s,
            notes=f"{(sim >= drift.MATCH_THRESHOLD).mean():.0%} matched",
        )
    )
    for name, value in calibration().items():
        out.append(
            Measurement(
                "report",
                f"drift threshold: cosine, {name}",
                value,
                "cosine",
                "threshold",
                drift.MATCH_THRESHOLD,
                notes="180 lessons from tau-bench gold actions, 3 templates, lexical embedder",
            )
        )
    return out
