"""`trace2skill calls`: tokens, cost, cache hits, errors and latency of the lake's model calls.

Reads ``LAKE/llm_calls`` through ``sql/calls_by_stage_model.sql`` and ``sql/calls_errors.sql``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import duckdb
import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.llm.cache import CallLog
from pipeline.options import lake_option, pass_console


def calls_report(
    lake: Lake, *, stage: str | None = None, model: str | None = None, limit: int = 10
):
    """(by stage/model/kind with a total row, top error reasons) as polars frames.

    Rows journaled by a run that was killed are written to the lake first, so they count.
    """
    if lake.is_local and Path(lake.base).exists() and not Path(lake.base).is_dir():
        raise click.ClickException(f"{lake.uri} is a file, not a lake folder")
    CallLog(lake).recover()
    con = sql.connect(lake)
    try:
        by = sql.query(con, "calls_by_stage_model", stage=stage, model=model)
        errors = sql.query(con, "calls_errors", stage=stage, model=model, limit=limit)
    except duckdb.Error as exc:
        raise click.ClickException(f"cannot read llm_calls in {lake.uri}: {exc}") from None
    finally:
        con.close()
    return by, errors


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


@click.command("calls")
@lake_option()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--stage", default=None, help="Only this stage (analyse, summarise, merge, ...).")
@click.option("--model", default=None, help="Only this model.")
@click.option("--errors", "limit", default=10, show_default=True, help="Error reasons to list.")
@pass_console
def calls(
    console: Console, lake: Lake, as_json: bool, stage: str | None, model: str | None, limit: int
):
    """Tokens, cost, cache hits, errors and latency of model calls.

    \b
    One line per stage, model and endpoint, then the total; latency percentiles (p50/p90/p99,
    milliseconds) cover requests that went to the server. Then the most frequent error reasons.
    """
    if limit < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--errors")
    by, errors = calls_report(lake, stage=stage, model=model, limit=limit)
    if as_json:
        payload = {
            "lake": lake.uri,
            "by_stage_model": by.filter(~pl.col("is_total")).drop("is_total").to_dicts(),
            "total": (
                by.filter("is_total").drop("is_total", "stage", "model", "kind").to_dicts()
                or [None]
            )[0],
            "errors": errors.to_dicts(),
        }
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    if by.is_empty():
        console.info(f"no model calls in {lake.uri}")
        return
    rows = [
        [
            "total" if r["is_total"] else r["stage"] or "(none)",
            "" if r["is_total"] else r["model"],
            "" if r["is_total"] else r["kind"],
            _fmt(r["requests"]),
            _fmt(r["cache_hits"]),
            _fmt(r["errors"]),
            f"{_fmt(r['tokens_in'])} / {_fmt(r['tokens_out'])}",
            f"{r['cost_usd']:.4f}",
            "/".join(_fmt(r[f"p{q}_ms"]) for q in (50, 90, 99)),
        ]
        for r in by.iter_rows(named=True)
    ]
    columns = ["stage", "model", "kind", "requests", "hits", "errors", "tokens in / out"]
    columns += ["USD", "p50/p90/p99 ms"]
    console.table(f"Model calls in {lake.uri}", columns, rows)
    if not errors.is_empty():
        console.table(
            "Errors",
            ["stage", "model", "kind", "errors", "reason"],
            errors.select("stage", "model", "kind", "errors", "reason").rows(),
        )
