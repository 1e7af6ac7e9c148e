"""`trace2skill models check|show`: what a model server takes, found by asking and remembered.

`check` runs the probe (`pipeline.llm.probe.probe`) against ``--base-url`` / ``--model`` and
writes its finding to ``LAKE/model_endpoints``, where every later command against the same server
and model reads it. `show` lists the latest finding of every endpoint the lake has met.
"""

from __future__ import annotations

import json

import click
import polars as pl

from pipeline.console import Console
from pipeline.lake import Lake
from pipeline.options import lake_option, model_options, pass_console, resolve_model_settings


@click.group("models")
def models() -> None:
    """What model servers take: structured output, tools, streaming, context window."""


@models.command("check")
@lake_option()
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print the finding as JSON on stdout.")
@pass_console
def check(console: Console, lake: Lake, model_overrides: dict, as_json: bool) -> None:
    """Probe a server with a few small requests and remember what it takes.

    \b
    Checks, in order: structured output (json_schema, then json_object with a schema, then
    json_object, then instructions only), native tool calls, streaming with usage, reasoning
    output, the context window (llama.cpp /props, vLLM /v1/models, Ollama /api/show, or the
    context_tokens setting) and the characters per token of a sample prompt.
    """
    from pipeline.llm import LLM, run_sync
    from pipeline.llm.probe import probe

    settings = resolve_model_settings(model_overrides)
    if settings.offline:
        raise click.UsageError(
            "models check needs --model NAME (and --base-url for a local server)"
        )
    llm = LLM(settings, lake, console=console)
    try:
        ep, checks = run_sync(probe(llm, console=console), release=[llm])
    finally:
        llm.close()
    found = ep.public()
    if as_json:
        click.echo(json.dumps({"endpoint": found, "checks": checks}, indent=2, default=str))
        return
    console.table(
        f"Checks of {settings.model} at {ep.base_url}",
        ["check", "mode", "ok", "s", "answer or error"],
        [
            [
                c["check"],
                c["mode"],
                "yes" if c["ok"] else "no",
                c["seconds"],
                c.get("error") or c.get("answer") or "",
            ]
            for c in checks
        ],
    )
    _show(console, [found])


@models.command("show")
@lake_option()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON on stdout.")
@pass_console
def show(console: Console, lake: Lake, as_json: bool) -> None:
    """The latest finding of every server and model the lake has met."""
    if not lake.exists("model_endpoints"):
        console.info(f"no model endpoints in {lake.uri}: run `trace2skill models check`")
        return
    latest = (
        lake.read("model_endpoints")
        .sort("recorded_at")
        .group_by("endpoint_id", maintain_order=True)
        .last()
        .sort("base_url", "model")
    )
    rows = latest.with_columns(
        pl.col("dropped").str.json_decode(pl.List(pl.String)),
        pl.col("notes").str.json_decode(pl.List(pl.String)),
    ).to_dicts()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    _show(console, rows)


def _show(console: Console, rows: list[dict]) -> None:
    console.table(
        "Model endpoints",
        [
            "server",
            "model",
            "structured",
            "tools",
            "stream",
            "context",
            "slots",
            "chars/token",
            "notes",
        ],
        [
            [
                f"{r['base_url']} ({r['server']})",
                r["model"],
                r["structured"],
                r["tools"],
                ("yes" if r["stream"] else "no") + ("" if r["stream_usage"] else " (no usage)"),
                r["context_tokens"],
                r["slots"],
                r["chars_per_token"],
                "; ".join(r["notes"] or []),
            ]
            for r in rows
        ],
    )
