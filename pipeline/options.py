"""Command-line pieces shared by every command: the lake option and the console."""

from __future__ import annotations

import functools

import click

from pipeline.console import Console
from pipeline.lake import Lake, LakeError


def _lake(ctx: click.Context, param: click.Parameter, value: str | None) -> Lake | None:
    """The lake named by --lake; an object store that cannot be reached fails here, once."""
    if not value:
        return None
    lake = Lake(value)
    try:
        lake.check()
    except LakeError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return lake


def lake_option(required: bool = True):
    return click.option(
        "--lake",
        "lake",
        required=required,
        envvar="T2S_LAKE",
        show_envvar=True,
        metavar="DIR|URI",
        help="Lake root: a folder, or s3://bucket/prefix.",
        callback=_lake,
    )


pass_console = click.make_pass_decorator(Console, ensure=True)


class AnalystName(click.ParamType):
    """The name of a built-in or installed analyst, checked when given: the registry reads the
    installed packages' entry points, which `--help` and the other options need not wait for."""

    name = "analyst"

    def convert(self, value, param, ctx):
        from pipeline.analyse import registry

        names = registry.available()
        if value not in names:
            self.fail(f"{value!r} is not one of {', '.join(names)}", param, ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        from pipeline.analyse import registry

        return [CompletionItem(n) for n in registry.available() if n.startswith(incomplete)]


def analyst_option(help: str):
    return click.option(
        "--analyst", type=AnalystName(), default=None, metavar="NAME",
        help=f"{help} Others: an installed package's (entry points trace2skill.analysts).",
    )  # fmt: skip


def model_options(func=None, *, multiple_models: bool = False):
    """--model, --base-url, --api-key, --settings and the limits, collected into `model_overrides`.

    The command resolves them with `resolve_model_settings(model_overrides)`: command line >
    settings file > environment > defaults. With `multiple_models`, --model is
    repeatable and required, and arrives apart as `models` (one client per model).
    `--model-seed` is the sampling seed sent to the server; a command's own `--seed` (sampling
    trajectories or tasks) is a different thing.
    """
    if func is None:
        return functools.partial(model_options, multiple_models=multiple_models)
    if multiple_models:
        model = click.option(
            "--model",
            "models",
            multiple=True,
            required=True,
            help="Model name at the endpoint; repeat to compare models.",
        )
    else:
        model = click.option(
            "--model", default=None, help="Model name, or 'offline' (the default) for no model."
        )
    options = [
        model,
        click.option(
            "--base-url",
            default=None,
            help="OpenAI-compatible server (default: $OPENAI_BASE_URL, or the settings file).",
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
            "--model-seed", default=None, type=int, help="Sampling seed sent to the server."
        ),
        click.option(
            "--token-budget", default=None, type=int, help="Stop cleanly after this many tokens."
        ),
        click.option(
            "--cost-budget", default=None, type=float, help="Stop cleanly after this many USD."
        ),
        click.option("--batch/--no-batch", default=None, help="Use the server's batch API."),
    ]
    keys = [
        "base_url",
        "api_key",
        "settings_file",
        "concurrency",
        "temperature",
        "token_budget",
        "batch",
    ]

    def collect(**kwargs):
        overrides = {k: kwargs.pop(k) for k in keys}
        if not multiple_models:
            overrides["model"] = kwargs.pop("model")
        overrides["seed"] = kwargs.pop("model_seed")
        overrides["cost_budget_usd"] = kwargs.pop("cost_budget")
        kwargs["model_overrides"] = overrides
        return func(**kwargs)

    functools.update_wrapper(collect, func)  # keeps options declared below this decorator
    for option in reversed(options):
        collect = option(collect)
    return collect


def resolve_model_settings(model_overrides: dict, **extra):
    """`ModelSettings` from the collected `model_options` (plus `extra` overrides), or a clear
    usage error naming the bad setting."""
    from pipeline.settings import ModelSettings, SettingsError

    overrides = {**model_overrides, **extra}
    settings_file = overrides.pop("settings_file", None)
    try:
        return ModelSettings.resolve(settings_file=settings_file, **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def propose_options(f):
    """--propose and --resurface: write a proposal for review instead of publishing."""
    from pipeline.skill.proposals import RESURFACE

    f = click.option(
        "--resurface", type=click.FloatRange(min=1.0), default=RESURFACE, show_default=True,
        help="A statement reviewers rejected is proposed again once its runs reach this "
             "multiple of what they were when rejected.",
    )(f)  # fmt: skip
    return click.option(
        "--propose", is_flag=True,
        help="Do not touch the skill in use: write the change as a proposal to review "
             "(`trace2skill review`), next to the folder in OUT.proposals/.",
    )(f)  # fmt: skip
