"""consolidate command (being built)."""

import click


@click.command("consolidate")
def consolidate():
    """Consolidate lessons into one skill folder."""
    raise click.ClickException("consolidate is not built yet")
