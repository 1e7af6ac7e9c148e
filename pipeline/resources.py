"""Where the files the code reads live: beside the package in a checkout, inside it when installed.

A checkout keeps the SQL files in `sql/` and the WikiTableQuestions sample in
`data/wikitablequestions/` at the repository's root; a wheel carries them as package data
(`pipeline/queries/`, `pipeline/evaluate/wikitablequestions/sample/`, mapped by setup.py).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def located(in_checkout: str, in_package: str, marker: str) -> Path:
    """The checkout's folder when it holds `marker`, else the installed package's."""
    here = CHECKOUT / in_checkout
    return here if (here / marker).exists() else PACKAGE / in_package


SQL_DIR = located("sql", "queries", "views_latest.sql")
WTQ_SAMPLE_DIR = located(
    "data/wikitablequestions", "evaluate/wikitablequestions/sample", "SOURCE.txt"
)
