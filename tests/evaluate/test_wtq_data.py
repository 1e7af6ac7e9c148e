"""Reading the WikiTableQuestions release: question files, the CSV quirks, the shipped sample."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.evaluate.wikitablequestions import data
from tests.conftest import DATA

SAMPLE = DATA / "wikitablequestions"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_release_csv_quirks(tmp_path):
    # backslash-escaped quotes and backslashes, a line break in a header, a repeated header,
    # an empty header, numeric columns, an empty cell
    path = write(
        tmp_path / "t.csv",
        '"Year","Title","Chart\nUK","Title","","Score"\n'
        '"1969","\\"Renaissance\\"","60","a","x","1.5"\n'
        '"1971","back\\\\slash","–","b","","2"\n',
    )
    frame, originals = data.read_table(path)
    assert frame.columns == ["row_id", "year", "title", "chart_uk", "title_2", "col_5", "score"]
    assert frame.get_column("title").to_list() == ['"Renaissance"', "back\\slash"]
    assert frame.get_column("row_id").to_list() == [1, 2]
    assert frame.schema["year"] == pl.Int64
    assert frame.schema["score"] == pl.Float64
    assert frame.schema["chart_uk"] == pl.String  # "–" is not a number: the column stays text
    assert frame.get_column("col_5").to_list() == ["x", None]
    assert originals["chart_uk"] == "Chart UK"


def test_column_names_are_sql_friendly():
    assert data.column_names(["Châteauroux", "1st place", "row_id", "Rank", "rank", "%"]) == [
        "chateauroux",
        "c_1st_place",
        "row_id_2",
        "rank",
        "rank_2",
        "col_6",
    ]


def test_ragged_table_names_file_and_record(tmp_path):
    path = write(tmp_path / "bad.csv", '"a","b"\n"1","2"\n"3"\n')
    with pytest.raises(data.DataError, match=r"bad\.csv: record 2: 1 cells under a header of 2"):
        data.read_table(path)


def test_bad_question_line_names_file_and_line(tmp_path):
    path = write(
        tmp_path / "data" / "training.tsv",
        "id\tutterance\tcontext\ttargetValue\nnt-0\tq?\tcsv/1.csv\t1\nnt-1\tbroken line\n",
    )
    with pytest.raises(data.DataError, match=r"training\.tsv: line 3"):
        data.read_questions(path)


def test_questions_unescape_lists(tmp_path):
    path = write(
        tmp_path / "data" / "training.tsv",
        "id\tutterance\tcontext\ttargetValue\n"
        "nt-7\twhich a\\pb?\tcsv/200-csv/1.csv\tClemson|Colorado State|A\\pB\n",
    )
    (q,) = data.read_questions(path)
    assert q.utterance == "which a|b?"
    assert q.answers == ["Clemson", "Colorado State", "A|B"]
    assert q.context == "csv/200-csv/1.csv"


def test_unknown_split_lists_known_ones():
    with pytest.raises(data.DataError, match="no split 'validation'.*train"):
        data.split_file(SAMPLE, "validation")


def test_sample_is_seeded_and_keeps_file_order():
    qs = data.read_questions(data.split_file(SAMPLE, "train"))
    a, b = data.sample(qs, 10, seed=1), data.sample(qs, 10, seed=1)
    assert [q.id for q in a] == [q.id for q in b] and len(a) == 10
    assert [q.id for q in data.sample(qs, 10, seed=2)] != [q.id for q in a]
    order = {q.id: i for i, q in enumerate(qs)}
    assert [order[q.id] for q in a] == sorted(order[q.id] for q in a)
    assert len(data.sample(qs, None, 0)) == len(qs) == 60


def test_shipped_sample_is_complete():
    for split in ("train", "test"):
        questions = data.read_questions(data.split_file(SAMPLE, split))
        assert len(questions) == 60
        for q in questions:
            frame, _ = data.read_table(SAMPLE / q.context)
            assert frame.height > 0
    assert (SAMPLE / "LICENSE").read_text().startswith("Attribution-ShareAlike 4.0")
    assert "7d455a5a" in (SAMPLE / "SOURCE.txt").read_text()


def test_copy_sample_reproduces_the_layout(tmp_path):
    written = data.copy_sample(SAMPLE, tmp_path / "s", {"train": 5, "test": 3}, seed=0)
    assert written == {"train": 5, "test": 3}
    copied = data.read_questions(data.split_file(tmp_path / "s", "test"))
    assert len(copied) == 3
    assert all((tmp_path / "s" / q.context).is_file() for q in copied)
