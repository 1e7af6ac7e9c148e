import datetime as dt

import polars as pl
import pytest

from pipeline import schemas
from pipeline.ids import digest


def test_every_table_has_grain_and_descriptions():
    for name, spec in schemas.REGISTRY.items():
        assert spec.grain.lower().startswith("one row per"), name
        missing = [c for c, d in spec.descriptions.items() if not d]
        assert not missing, f"{name}: columns without description {missing}"
        schemas.arrow_schema(name)  # every dtype maps to Arrow


def test_validate_names_missing_columns():
    with pytest.raises(schemas.TableError, match="missing columns"):
        schemas.validate("ingest_errors", pl.DataFrame({"file": ["x"]}))


def test_validate_reports_bad_values():
    df = pl.DataFrame(
        {
            "file": ["a"],
            "file_sha256": [None],
            "record": ["1"],
            "format": [None],
            "error": ["bad"],
            "ingested_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
        }
    )
    assert schemas.validate("ingest_errors", df).schema["file_sha256"] == pl.String


def test_digest_is_stable():
    # Pinned: ids persisted in lakes must not change between library versions.
    assert digest("a", 1, {"b": [1, 2]}) == digest("a", 1, {"b": [1, 2]})
    assert digest("x") == "b7ada36295ee00de2069"
