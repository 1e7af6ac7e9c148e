"""The `contrasts` table: which behaviours go with success, measured, per source.

Reads `trajectories` and `actions` (`sql/behaviour_run_features.sql`: every feature of every run
with a known outcome; `sql/behaviour_feature_counts.sql`: the counts per task); writes
`contrasts`, whole, on every analyse.

For each feature with at least `min_runs` runs on each side, the success rates with and without
it, their difference with Newcombe's interval and Fisher's exact p; where the source's tasks have
several runs each (other models, other attempts), the same difference within tasks
(Mantel-Haenszel, Sato's interval, the CMH test), so that a behaviour more common on easy tasks
does not pass for one that helps. The within-task estimate decides in a source where most runs
share their task with others; there a feature needs `min_tasks` tasks with runs on both sides to
be tested at all (a behaviour that only ever varies between tasks cannot be told from the tasks).
Elsewhere the pooled estimate decides. p-values are adjusted over the source's features (Benjamini-Hochberg); a
feature is a finding when its q-value is at most `fdr` and its deciding interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline import schemas, sql
from pipeline.analyse.behaviour import stats
from pipeline.analyse.behaviour.words import Wording
from pipeline.lake import Lake


@dataclass(frozen=True)
class ContrastSettings:
    fdr: float = 0.05  # false-discovery rate over a source's features
    min_runs: int = 5  # runs needed on each side of a contrast
    min_tasks: int = 5  # tasks with runs on both sides before the within-task estimate decides


@dataclass
class Behaviour:
    """What the miner reads: the contrasts and, per run, the features it has."""

    contrasts: pl.DataFrame
    run_features: pl.DataFrame  # behaviour_run_features rows
    wording: Wording

    def findings(self, source: str) -> pl.DataFrame:
        return self.contrasts.filter((pl.col("source") == source) & pl.col("is_finding"))


def measure(con: duckdb.DuckDBPyConnection, settings: ContrastSettings | None = None) -> Behaviour:
    settings = settings or ContrastSettings()
    features = sql.query(con, "behaviour_run_features")
    wording = Wording(sql.query(con, "behaviour_family_programs"))
    con.register("run_features", features)
    try:
        counts = sql.query(con, "behaviour_feature_counts")
        same = sql.query(con, "behaviour_equivalent_features")
    finally:
        con.unregister("run_features")
    counts = counts.join(
        same.filter(pl.col("feature") == pl.col("representative")).select("source", "feature"),
        on=["source", "feature"],
        how="semi",
    )
    equivalent = {
        (source, feature): ", ".join(sorted(others))
        for source, feature, others in same.filter(pl.col("feature") != pl.col("representative"))
        .group_by("source", "representative")
        .agg("feature")
        .iter_rows()
    }
    repeats = sql.query(con, "behaviour_task_repeats")
    repeated = {
        source
        for source, n, n_repeated in repeats.select("source", "n_runs", "n_repeated").iter_rows()
        if 2 * n_repeated > n
    }
    table = contrast_table(counts, wording, settings, repeated, equivalent)
    return Behaviour(table, features, wording)


def update_contrasts(lake: Lake, con: duckdb.DuckDBPyConnection, behaviour: Behaviour) -> None:
    lake.write_part("contrasts", behaviour.contrasts, part="latest")
    sql.attach(con, lake)  # the analysts prepared on this connection read the new table


def contrast_table(
    counts: pl.DataFrame,
    wording: Wording,
    settings: ContrastSettings,
    repeated: set[str] = frozenset(),
    equivalent: dict[tuple[str, str], str] | None = None,
) -> pl.DataFrame:
    """One contrasts row per feature with enough runs on both sides; `repeated` names the
    sources whose tasks have several runs, where the within-task estimate decides."""
    rows = []
    for (source, feature), group in counts.group_by("source", "feature", maintain_order=True):
        n1, s1 = int(group["n_with"].sum()), int(group["success_with"].sum())
        n0, s0 = int(group["n_without"].sum()), int(group["success_without"].sum())
        if n1 < settings.min_runs or n0 < settings.min_runs:
            continue
        low, high = stats.newcombe(s1, n1, s0, n0)
        strata = [
            stats.Stratum(*r)
            for r in group.filter(pl.col("task_id").is_not_null())
            .select("success_with", "n_with", "success_without", "n_without")
            .iter_rows()
        ]
        use_within = source in repeated
        within = stats.mantel_haenszel(strata)
        if within.n_strata < settings.min_tasks:
            within = stats.Stratified(within.n_strata, None, None, None, None)
        rows.append(
            {
                "source": source,
                "feature": feature,
                "phrase": wording.phrase(source, feature),
                "equivalent": (equivalent or {}).get((source, feature)),
                "n_with": n1,
                "success_with": s1,
                "n_without": n0,
                "success_without": s0,
                "rate_with": s1 / n1,
                "rate_without": s0 / n0,
                "diff": s1 / n1 - s0 / n0,
                "ci_low": low,
                "ci_high": high,
                "p_value": stats.fisher_exact(s1, n1 - s1, s0, n0 - s0),
                "n_tasks": within.n_strata,
                "within_diff": within.diff,
                "within_ci_low": within.ci_low,
                "within_ci_high": within.ci_high,
                "within_p_value": within.p_value,
                "estimate": "within_task" if use_within else "pooled",
            }
        )
    if not rows:
        return schemas.empty("contrasts")
    frame = pl.DataFrame(rows)
    deciding = pl.when(pl.col("estimate") == "within_task")
    frame = frame.with_columns(
        deciding.then("within_p_value").otherwise("p_value").alias("_p"),
        deciding.then("within_ci_low").otherwise("ci_low").alias("_low"),
        deciding.then("within_ci_high").otherwise("ci_high").alias("_high"),
    )
    q_values: list[float | None] = [None] * frame.height
    for rows, p_values in (
        frame.with_row_index("_i").group_by("source").agg("_i", "_p").select("_i", "_p").iter_rows()
    ):
        for i, q in zip(rows, stats.benjamini_hochberg(p_values), strict=True):
            q_values[i] = q
    frame = frame.with_columns(
        pl.Series("q_value", q_values, dtype=pl.Float64), pl.lit(settings.fdr).alias("fdr")
    ).with_columns(
        ((pl.col("q_value") <= settings.fdr) & ((pl.col("_low") > 0) | (pl.col("_high") < 0)))
        .fill_null(False)
        .alias("is_finding")
    )
    return schemas.validate("contrasts", frame.drop("_p", "_low", "_high")).sort(
        "source", "is_finding", "q_value", "feature",
        descending=[False, True, False, False], nulls_last=True,
    )  # fmt: skip
