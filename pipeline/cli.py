"""The `trace2skill` command: one group, a subcommand per stage (each defined beside its stage)."""

from __future__ import annotations

import click

from pipeline import __version__
from pipeline.console import Console
from pipeline.lake import LakeError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        # A storage fault mid-command (the object store went away) is a message, not a traceback.
        try:
            return super().invoke(ctx)
        except LakeError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("-q", "--quiet", is_flag=True, help="Print errors and results only.")
@click.option("-v", "--verbose", is_flag=True, help="Print more detail.")
@click.version_option(__version__, prog_name="trace2skill")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Distil a lake of agent trajectories into an Agent Skills folder.

    \b
    The flow:  ingest -> analyse -> consolidate -> (coverage, report)
    `distill` runs all of it; `stats`, `sql` and `calls` look at the lake.
    """
    ctx.obj = Console(0 if quiet else 2 if verbose else 1)


def _register() -> None:
    from pipeline.analyse.commands import analyse
    from pipeline.consolidate.commands import consolidate
    from pipeline.distill import distill
    from pipeline.evaluate.commands import eval_, rollout
    from pipeline.ingest.commands import ingest, stats, synth
    from pipeline.llm.commands import calls
    from pipeline.llm.models_command import models
    from pipeline.report.commands import coverage, sql, warehouse

    for command in (
        distill,
        ingest,
        stats,
        synth,
        analyse,
        consolidate,
        coverage,
        sql,
        warehouse,
        calls,
        models,
        rollout,
        eval_,
    ):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
