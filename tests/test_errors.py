"""One base for the errors a user can act on, one class per kind of error, and the command line
shows their message without a traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import pipeline.consolidate.settings
import pipeline.evaluate.skill
import pipeline.settings
import pipeline.skill.folder
from pipeline.analyse.summary import AnalyseError
from pipeline.cli import _Group
from pipeline.consolidate.run import ConsolidateError
from pipeline.errors import UserError
from pipeline.ingest.labels import LabelsError
from pipeline.ingest.run import IngestError
from pipeline.lake import LakeError
from pipeline.report.query import QueryError
from pipeline.report.runs import CoverageError
from pipeline.schemas import TableError
from pipeline.sqlguard import SqlRefused


@pytest.mark.parametrize(
    "error",
    [
        AnalyseError, ConsolidateError, CoverageError, IngestError, LabelsError, LakeError,
        QueryError, SqlRefused, TableError, pipeline.settings.SettingsError,
        pipeline.skill.folder.SkillError,
    ],
)  # fmt: skip
def test_every_stage_error_is_a_user_error(error):
    assert issubclass(error, UserError)


def test_one_settings_error_and_one_skill_error():
    assert pipeline.consolidate.settings.SettingsError is pipeline.settings.SettingsError
    assert pipeline.evaluate.skill.SkillError is pipeline.skill.folder.SkillError


def test_the_command_line_prints_a_user_error_without_a_traceback():
    group = _Group(name="t")

    @group.command("fails")
    def fails():
        raise LabelsError("labels.csv, row 3: outcome 'maybe' is neither success nor failure")

    @group.command("bug")
    def bug():
        raise KeyError("a bug keeps its traceback")

    result = CliRunner().invoke(group, ["fails"])
    assert result.exit_code == 1
    assert "Error: labels.csv, row 3: outcome 'maybe'" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(group, ["bug"])
    assert isinstance(result.exception, KeyError)
    assert not isinstance(result.exception, click.ClickException)
