"""Command-line pieces shared by every command: the lake option and the console."""

from __future__ import annotations

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
