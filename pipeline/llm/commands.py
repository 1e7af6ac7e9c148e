"""calls command (being built)."""

import click


@click.command("calls")
def calls():
    """Tokens, cost, cache hits, errors and latency of model calls."""
    raise click.ClickException("calls is not built yet")
