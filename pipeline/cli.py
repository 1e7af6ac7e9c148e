"""The `trace2skill` command: one group, a subcommand per stage (each defined beside its stage)."""

from __future__ import annotations

import gc
import importlib

import click

from pipeline import __version__
from pipeline.console import Console
from pipeline.errors import UserError

# Each subcommand and where it is defined. A command's module is imported only when that command
# runs (or help lists them all): the stages import heavy libraries the others do not need.
COMMANDS = {
    "distill": "pipeline.distill_command:distill",
    "ingest": "pipeline.ingest.commands:ingest",
    "stats": "pipeline.ingest.commands:stats",
    "synth": "pipeline.ingest.commands:synth",
    "analyse": "pipeline.analyse.commands:analyse",
    "consolidate": "pipeline.consolidate.commands:consolidate",
    "coverage": "pipeline.report.commands:coverage",
    "sql": "pipeline.report.commands:sql",
    "warehouse": "pipeline.report.commands:warehouse",
    "calls": "pipeline.llm.commands:calls",
    "models": "pipeline.llm.models_command:models",
    "rollout": "pipeline.evaluate.commands:rollout",
    "eval": "pipeline.evaluate.commands:eval_",
    "versions": "pipeline.skill.commands:versions",
    "diff": "pipeline.skill.commands:diff",
    "review": "pipeline.skill.review_command:review_command",
    "export": "pipeline.skill.commands:export_command",
    "audit": "pipeline.audit_command:audit",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            command = getattr(importlib.import_module(module), attr)
            assert command.name == name, (name, command.name)
            self.add_command(command)
        return self.commands.get(name)

    def main(self, args=None, *rest, **kwargs):
        if args is not None:  # called from code (a test's CliRunner): the collector is theirs
            return super().main(args, *rest, **kwargs)
        # Run as the program. What the imports created (modules, classes, hundreds of thousands
        # of objects) lives as long as the process: keep it out of the collector's full passes,
        # which otherwise pause the command for a tenth of a second each; and freeze again at
        # the end, so the exit skips a last full pass over everything (about half a second).
        gc.freeze()
        try:
            return super().main(args, *rest, **kwargs)
        finally:
            gc.freeze()

    def invoke(self, ctx: click.Context):
        # A problem the user can act on (an option, an input, the lake, a storage fault mid-command)
        # is a message, not a traceback; commands that exit with a status of their own catch
        # their errors first.
        try:
            return super().invoke(ctx)
        except UserError as exc:
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
    `distill` runs all of it; `stats`, `sql` and `calls` look at the lake; `versions` and
    `diff` show the skill versions consolidations published and what changed between them;
    `distill --propose` writes a change for `review` instead of publishing it.
    """
    ctx.obj = Console(0 if quiet else 2 if verbose else 1)


if __name__ == "__main__":
    main()
