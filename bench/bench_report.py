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
from pipeline.report.coverage import coverage, lesson_keys
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


def calibration(workdir: Path) -> dict[str, float]:
    """Title cosine (lexical embedder) of the demo lake's own lessons, as consolidation grouped
    them: pairs in one cluster against pairs of two clusters of one block (target section and
    polarity), the only pairs drift compares."""
    from pipeline.analyse.run import analyse
    from pipeline.consolidate.run import consolidate
    from pipeline.ingest.run import ingest_paths

    data = ROOT / "data"
    base = data / "tau-bench-airline" / "base-skill"
    lake = Lake(workdir / "calibration-lake")
    ingest_paths(
        lake,
        [
            data / "tau-bench-airline" / "gpt-4o-airline.json",
            data / "reflexion-hotpotqa" / "100_questions_5_trials.txt",
        ],
    )
    airline, hotpotqa = "source = 'tau-bench-airline'", "source = 'reflexion-hotpotqa'"
    analyse(lake, analyst="miner", base_skill=base, where=airline)
    analyse(lake, analyst="miner", where=hotpotqa)
    runs = [
        consolidate(lake, base_skill=base, out_dir=workdir / "cal-airline", where=airline).run_id,
        consolidate(lake, out_dir=workdir / "cal-hotpotqa", where=hotpotqa).run_id,
    ]
    con = connect_views(lake)
    keys = lesson_keys(con)
    members = con.sql("select run_id, lesson_id, cluster_id from cluster_members").pl()
    con.close()
    same, other = [], []
    embed = get_embedder("lexical").embed
    for run_id in runs:
        m = members.filter(pl.col("run_id") == run_id).join(keys, on="lesson_id")
        sims = embed(m["title"].to_list()) @ embed(m["title"].to_list()).T
        iu = np.triu_indices(m.height, 1)
        cluster, block = m["cluster_id"].to_numpy(), m["block"].to_numpy()
        one = (cluster[:, None] == cluster[None, :])[iu]
        alike = (block[:, None] == block[None, :])[iu]
        same.append(sims[iu][one])
        other.append(sims[iu][~one & alike])
    same_all, other_all = np.concatenate(same), np.concatenate(other)
    return {
        "one cluster, 1st percentile": float(np.percentile(same_all, 1)),
        "two clusters of one block, 99.9th percentile": float(np.percentile(other_all, 99.9)),
        "two clusters of one block, max": float(other_all.max()),
        "two clusters of one block, share at or above the threshold": float(
            (other_all >= drift.MATCH_THRESHOLD).mean()
        ),
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
    con.register("lesson_keys", lesson_keys(con))
    targets = sqlfiles.query(
        con, "coverage_skill_targets", run_id=cov.run["run_id"], max_titles=drift.MAX_TITLES
    )
    con.close()
    queries = [f"Check tool_{k % TOOLS} arguments (rule {k % 11}), case {k}" for k in range(n_new)]
    target_texts, target_blocks = targets["title"].to_list(), targets["block"].to_list()
    query_blocks = [target_blocks[k % len(target_blocks)] for k in range(n_new)]
    match_s, (_, sim) = _timed(
        lambda: drift.best_matches(
            queries, target_texts, query_blocks=query_blocks, target_blocks=target_blocks
        ),
        repeat=2,
    )
    embed_s, _ = _timed(lambda: get_embedder("lexical").embed(queries + target_texts), repeat=2)
    out.append(
        Measurement(
            "report",
            f"drift: match {n_new:,} new lessons to {len(target_texts)} titles of "
            f"{targets['cluster_id'].n_unique()} consolidated lessons",
            n_new / match_s,
            "lessons/s",
            "embedding alone",
            n_new / embed_s,
            notes=f"{(sim >= drift.MATCH_THRESHOLD).mean():.0%} matched",
        )
    )
    for name, value in calibration(workdir).items():
        out.append(
            Measurement(
                "report",
                f"drift threshold: title cosine, {name}",
                value,
                "share" if name.startswith("two clusters of one block, share") else "cosine",
                "threshold",
                drift.MATCH_THRESHOLD,
                notes="978 miner lessons of the demo lake, as the two demo consolidations "
                "grouped them; lexical embedder",
            )
        )
    return out
