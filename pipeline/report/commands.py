"""sql, warehouse, coverage commands (being built)."""

import click


@click.command("sql")
def sql():
    """Query the lake with SQL."""
    raise click.ClickException("sql is not built yet")


@click.command("warehouse")
def warehouse():
    """Build a DuckDB file of views over the lake."""
    raise click.ClickException("warehouse is not built yet")


@click.command("coverage")
def coverage():
    """What the skill covers and what it dropped."""
    raise click.ClickException("coverage is not built yet")
