"""Command-line pieces shared by every command: the lake option and the console."""

from __future__ import annotations

import functools

import click

from pipeline.console import Console
from pipeline.lake import Lake


def lake_option(required: bool = True):
    return click.option(
        "--lake",
        "lake",
        required=required,
        envvar="T2S_LAKE",
        show_envvar=True,
        metavar="DIR|URI",
        help="Lake root: a folder, or s3://bucket/prefix.",
        callback=lambda ctx, param, value: Lake(value) if value else None,
    )


pass_console = click.make_pass_decorator(Console, ensure=True)


def model_options(func):
    """--model, --base-url, --api-key, --settings and the limits, collected into `model_overrides`.

    The command resolves them with `ModelSettings.resolve(settings_file=..., **overrides)`:
    command line > settings file > environment > defaults.
    """
    options = [
        click.option(
            "--model", default=None, help="Model name, or 'offline' (the default) for no model."
        ),
        click.option(
            "--base-url",
            default=None,
            envvar="OPENAI_BASE_URL",
            show_envvar=True,
            help="OpenAI-compatible server.",
        ),
        click.option(
            "--api-key", default=None, help="API key (default: $OPENAI_API_KEY). Never stored."
        ),
        click.option(
            "--settings",
            "settings_file",
            default=None,
            type=click.Path(dir_okay=False),
            help="Settings file (TOML); default ./trace2skill.toml if present.",
        ),
        click.option("--concurrency", default=None, type=int, help="Requests in flight at once."),
        click.option("--temperature", default=None, type=float, help="Sampling temperature."),
        click.option(
            "--seed", "model_seed", default=None, type=int, help="Sampling seed sent to the server."
        ),
        click.option(
            "--token-budget", default=None, type=int, help="Stop cleanly after this many tokens."
        ),
        click.option(
            "--cost-budget", default=None, type=float, help="Stop cleanly after this many USD."
        ),
        click.option("--batch/--no-batch", default=None, help="Use the server's batch API."),
    ]

    def collect(**kwargs):
        keys = [
            "model",
            "base_url",
            "api_key",
            "settings_file",
            "concurrency",
            "temperature",
            "model_seed",
            "token_budget",
            "cost_budget",
            "batch",
        ]
        overrides = {k: kwargs.pop(k) for k in keys}
        overrides["seed"] = overrides.pop("model_seed")
        overrides["cost_budget_usd"] = overrides.pop("cost_budget")
        kwargs["model_overrides"] = overrides
        return func(**kwargs)

    functools.update_wrapper(collect, func)  # keeps options declared below this decorator
    for option in reversed(options):
        collect = option(collect)
    return collect
