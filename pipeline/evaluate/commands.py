"""rollout, eval commands (being built)."""

import click


@click.command("rollout")
def rollout():
    """Run an agent on an environment's tasks."""
    raise click.ClickException("rollout is not built yet")


@click.command("eval")
def eval_():
    """Evaluate a skill against a baseline."""
    raise click.ClickException("eval is not built yet")
