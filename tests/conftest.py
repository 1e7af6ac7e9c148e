"""Shared fixtures: a fresh lake per test, the repository's paths, a loopback model server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.lake import Lake

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # `from loopback import Loopback`

from loopback import Loopback  # noqa: E402


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    """A fresh loopback OpenAI-compatible server on 127.0.0.1 (see tests/loopback.py).

    ``loopback.settings(**overrides)`` gives ModelSettings pointed at it; ``loopback.script``,
    ``.responder``, ``.fail`` and ``.fault_rate`` shape its answers; ``.received`` records them.
    """
    with Loopback() as server:
        yield server
