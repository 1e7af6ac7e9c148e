"""Bad input: each bad record is named, recorded in ingest_errors and skipped; the rest is read."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.run import EXIT_NOTHING, EXIT_OK, EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake
from tests.conftest import DATA


def chat_line(i: int, text: str = "hi") -> str:
    return json.dumps(
        {"id": f"r{i}", "messages": [{"role": "user", "content": f"{text} {i}"},
                                     {"role": "assistant", "content": "hello"}]},
        ensure_ascii=False,
    )  # fmt: skip


def errors_of(lake: Lake) -> list[tuple[str, str]]:
    e = lake.read("ingest_errors").sort("file", "record")
    return list(zip(e["record"], e["error"], strict=True))


def test_bad_lines_are_skipped_and_the_rest_read(lake: Lake, tmp_path: Path):
    lines = [chat_line(i) for i in range(6)]
    lines[1] = lines[1][:40]  # cut mid-way
    lines[2] = json.dumps({"id": "r2", "messages": []})
    lines[3] = json.dumps({"id": "r3", "conversation": []})
    data = "\n".join(lines).encode() + b"\n" + chat_line(9, "caf\u00e9").encode("latin-1") + b"\n"
    data += lines[0][:25].encode()  # the last line truncated
    path = tmp_path / "runs.jsonl"
    path.write_bytes(data)
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    assert lake.read("trajectories")["native_id"].sort().to_list() == ["r0", "r4", "r5"]
    errors = errors_of(lake)
    assert [r for r, _ in errors] == ["line 2", "line 3", "line 4", "line 7", "line 8"]
    assert "invalid JSON" in errors[0][1] and "column" in errors[0][1]
    assert "without messages" in errors[1][1] and "without messages" in errors[2][1]
    assert (
        "not valid UTF-8" in errors[3][1] and "0xE9" in errors[3][1] and "latin-1" in errors[3][1]
    )
    assert "truncated JSON" in errors[4][1]
    assert summary.files[0].n_skipped == 5 and summary.files[0].status == "ingested"
    assert all(e.file == str(path) for e in summary.errors)


def test_utf16_file_is_refused_with_a_remedy(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes((chat_line(1) + "\n").encode("utf-16"))
    good = tmp_path / "good.jsonl"
    good.write_text(chat_line(2) + "\n")
    summary = ingest_paths(lake, [path, good])
    assert summary.exit_code == EXIT_PARTIAL
    assert [f.status for f in summary.files] == ["failed", "ingested"]
    assert "UTF-16" in summary.errors[0].error and "iconv" in summary.errors[0].error
    assert lake.read("trajectories").height == 1
    assert errors_of(lake)[0][0] == "-"


def test_truncated_json_list_keeps_the_records_before_the_damage(lake: Lake, tmp_path: Path):
    runs = json.loads((DATA / "tau-bench-airline" / "gpt-4o-airline.json").read_text())[:5]
    text = json.dumps(runs)
    path = tmp_path / "gpt-4o-airline.json"
    path.write_text(text[: len(text) * 7 // 10])
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    t = lake.read("trajectories")
    assert 1 <= t.height < 5 and t["model"].unique().to_list() == ["gpt-4o"]
    ((record, error),) = errors_of(lake)
    assert record == f"[{t.height}]" and "could not be read" in error


def test_latin1_bytes_inside_a_json_list_skip_only_that_record(lake: Lake, tmp_path: Path):
    runs = [{"task_id": i, "trial": 0, "reward": 1.0, "info": {},
             "traj": [{"role": "user", "content": f"hello {i}"}]} for i in range(3)]  # fmt: skip
    data = json.dumps(runs, indent=1).replace("hello 1", "h\u00e9llo 1").encode("latin-1")
    path = tmp_path / "x-airline.json"
    path.write_bytes(data)
    summary = ingest_paths(lake, [path])
    assert summary.files[0].format == "tau-bench"
    assert lake.read("trajectories")["task_id"].sort().to_list() == ["0", "2"]
    ((record, error),) = errors_of(lake)
    assert record == "[1]" and "not valid UTF-8" in error


def test_empty_folder_missing_path_and_unknown_file(lake: Lake, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    summary = ingest_paths(lake, [tmp_path / "empty", tmp_path / "nope"])
    assert summary.exit_code == EXIT_NOTHING
    problems = {Path(p.file).name: p.error for p in summary.errors}
    assert "no trajectory files" in problems["empty"] and "no such file" in problems["nope"]
    assert lake.read("ingest_errors").height == 2
    unknown = tmp_path / "notes.json"
    unknown.write_text('{"hello": "world"}')
    summary = ingest_paths(lake, [unknown])
    assert summary.exit_code == EXIT_NOTHING
    assert (
        "format not recognised" in summary.errors[0].error
        and "--mapping" in summary.errors[0].error
    )


def test_unknown_file_in_a_walked_folder_is_ignored_not_an_error(lake: Lake, tmp_path: Path):
    (tmp_path / "runs.jsonl").write_text(chat_line(1) + "\n")
    (tmp_path / "preds.json").write_text('{"x": {"model_patch": ""}}')
    (tmp_path / "config.yaml").write_text("a: 1\n")
    (tmp_path / ".hidden.jsonl").write_text(chat_line(2) + "\n")
    summary = ingest_paths(lake, [tmp_path], source="mine")
    assert summary.exit_code == EXIT_OK
    assert [p.file for p in summary.ignored] == [str(tmp_path / "preds.json")]
    assert summary.n_ignored_suffix == 1 and summary.n_trajectories == 1


def test_a_fixed_file_clears_its_errors(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text(chat_line(1) + "\n{broken\n")
    assert ingest_paths(lake, [path]).exit_code == EXIT_PARTIAL
    path.write_text(chat_line(1) + "\n" + chat_line(2) + "\n")
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_OK and summary.files[0].status == "replaced"
    assert lake.read("ingest_errors").height == 0 and lake.read("trajectories").height == 2


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(lake: Lake, tmp_path: Path, content: bytes):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(content)
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_NOTHING and "empty" in summary.errors[0].error


def test_react_log_with_a_wrong_trial_summary(lake: Lake, tmp_path: Path):
    log = (
        "BEGIN TRIAL 1\nTrial summary: Correct: 2, Incorrect: 0, Halted: 0\n"
        "------------- BEGIN CORRECT AGENTS -------------\n\n"
        "Question: What is 2+2?\nThought 1: Easy.\nAction 1: Finish[4]\n"
        "Observation 1: Answer is CORRECT\nCorrect answer: 4\n"
    )
    path = tmp_path / "log.txt"
    path.write_text(log)
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL and lake.read("trajectories").height == 1
    assert "summary says 2 correct" in summary.errors[0].error
    assert pl.Series(errors_of(lake)).len() == 1
