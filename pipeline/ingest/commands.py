"""ingest, stats and synth commands (being built)."""

import click


@click.command()
def ingest():
    """Read raw trajectory files into the lake."""
    raise click.ClickException("ingest is not built yet")


@click.command()
def stats():
    """Counts over the lake."""
    raise click.ClickException("stats is not built yet")


@click.command()
def synth():
    """Write synthetic trajectories."""
    raise click.ClickException("synth is not built yet")
