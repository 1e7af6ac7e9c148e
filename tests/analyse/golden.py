"""Golden files for the analyse tests: compare, or rewrite when T2S_UPDATE_GOLDEN=1 (make golden)."""

from __future__ import annotations

import os

from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "analyse"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("T2S_UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if os.environ.get("T2S_UPDATE_GOLDEN") != "1":
            raise AssertionError(f"golden file {path} was missing: written, check it and rerun")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path} (make golden to accept)"
