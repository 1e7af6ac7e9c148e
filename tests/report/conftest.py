"""Fixtures of the report tests, built once per session: the hand-built lake of `fixture.py`,
whose answers are worked out by hand, and the demo lake of `demo.py`, distilled from the real
demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.lake import Lake

from . import demo, fixture


@pytest.fixture(scope="session")
def fixture_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("report-fixture")
    lake = Lake(root / "lake")
    fixture.build(lake, root / "out" / "skill")
    return lake


@pytest.fixture(scope="session")
def skill_dir(fixture_lake: Lake) -> Path:
    return Path(fixture_lake.base).parent / "out" / "skill"


@pytest.fixture(scope="session")
def new_batch(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A second lake holding only the held-out runs, as a new batch would arrive."""
    root = tmp_path_factory.mktemp("report-batch")
    lake = Lake(root / "lake")
    fixture.build(lake, root / "unused", only_held_out=True)
    return lake


@pytest.fixture(scope="session")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> demo.Demo:
    """Both demo sources ingested, analysed and consolidated (see demo.py): a few seconds."""
    return demo.build(tmp_path_factory.mktemp("report-demo"))
