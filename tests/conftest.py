"""Shared fixtures: a fresh lake per test, the repository's paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")
