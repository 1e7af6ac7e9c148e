"""analyse command (being built)."""

import click


@click.command("analyse")
def analyse():
    """Analyse every trajectory into lessons."""
    raise click.ClickException("analyse is not built yet")
