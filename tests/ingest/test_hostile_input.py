"""Hostile input: pathological files, unreadable folders, odd records and leftovers of a killed
ingest each end as a named error (or are cleaned up) while everything else is read."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.ingest.formats import openai_chat
from pipeline.ingest.run import EXIT_PARTIAL, ingest_paths
from pipeline.lake import Lake
from pipeline.writers import OBJECT_STORE_GRACE
from tests.ingest.test_otel import chat, text


def chat_line(i: int, **fields) -> str:
    messages = [{"role": "user", "content": f"task {i}"}, {"role": "assistant", "content": "done"}]
    return json.dumps({"id": f"r{i}", "messages": messages, **fields})


def write_runs(path: Path, n: int) -> Path:
    path.write_text("".join(chat_line(i) + "\n" for i in range(n)))
    return path


def contents(lake: Lake) -> list[str]:
    return lake.read("steps").sort("trajectory_id", "step_idx")["content"].to_list()


def test_deeply_nested_file_is_named_and_the_good_file_beside_it_read(tmp_path: Path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "deep.json").write_text("[" * 100_000)
    write_runs(runs / "good.jsonl", 200)
    lake = tmp_path / "lake"
    result = CliRunner().invoke(main, ["ingest", str(runs), "--lake", str(lake)])
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError)
    assert f"{runs / 'deep.json'}: JSON nested too deeply" in result.output
    assert Lake(lake).read("trajectories").height == 200
    errors = Lake(lake).read("ingest_errors")
    assert errors.select("file", "record").rows() == [(str(runs / "deep.json"), "-")]


def test_a_deeply_nested_line_is_a_bad_record_of_its_jsonl_file(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    lines = [chat_line(0), "[" * 50_000 + "]" * 50_000, chat_line(2), '{"a": ' * 50_000]
    path.write_text("\n".join(lines) + "\n")
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    assert lake.read("trajectories")["native_id"].sort().to_list() == ["r0", "r2"]
    assert [(e.record, "nested too deeply" in e.error) for e in summary.errors] == [
        ("line 2", True),
        ("line 4", True),
    ]


def test_a_file_that_trips_a_reader_fails_alone(lake: Lake, tmp_path: Path, monkeypatch):
    real = openai_chat.chat_steps

    def chat_steps(messages, **kw):
        if messages[0]["content"] == "boom":
            raise RecursionError("maximum recursion depth exceeded")
        return real(messages, **kw)

    monkeypatch.setattr(openai_chat, "chat_steps", chat_steps)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "boom"}]}) + "\n")
    good = write_runs(tmp_path / "good.jsonl", 3)
    summary = ingest_paths(lake, [bad, good])
    assert [f.status for f in summary.files] == ["failed", "ingested"]
    assert summary.errors[0].file == str(bad) and "nested too deeply" in summary.errors[0].error
    assert summary.exit_code == EXIT_PARTIAL and lake.read("trajectories").height == 3


def _folder_with_a_locked_sub_folder(tmp_path: Path) -> tuple[Path, Path]:
    runs = tmp_path / "runs"
    locked = runs / "b-locked"
    locked.mkdir(parents=True)
    write_runs(runs / "a.jsonl", 2)
    write_runs(locked / "lost.jsonl", 5)
    return runs, locked


def _check_reported_and_counted(lake: Lake, runs: Path, locked: Path, summary) -> None:
    assert summary.exit_code == EXIT_PARTIAL
    assert summary.n_unreadable_folders == 1
    ((problem),) = summary.errors
    assert (problem.file, problem.record) == (str(runs), str(locked))
    assert "cannot read this folder" in problem.error and "not ingested" in problem.error
    assert lake.read("ingest_errors").select("file", "record").rows() == [(str(runs), str(locked))]
    assert lake.read("trajectories").height == 2


def test_unreadable_sub_folder_is_reported_and_counted(lake: Lake, tmp_path: Path):
    runs, locked = _folder_with_a_locked_sub_folder(tmp_path)
    locked.chmod(0)
    try:
        if os.geteuid() == 0 and os.access(locked, os.R_OK):
            pytest.skip("running as root: a folder without permissions is still readable")
        summary = ingest_paths(lake, [runs])
    finally:
        locked.chmod(0o755)
    _check_reported_and_counted(lake, runs, locked, summary)


def test_sub_folder_the_system_refuses_to_list_is_reported(lake: Lake, tmp_path: Path, monkeypatch):
    runs, locked = _folder_with_a_locked_sub_folder(tmp_path)
    real = os.scandir

    def scandir(path="."):  # what the system answers a user without read permission
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = ingest_paths(lake, [runs])
    _check_reported_and_counted(lake, runs, locked, summary)


def test_leading_null_lines_are_named_bad_records(lake: Lake, tmp_path: Path):
    path = tmp_path / "runs.jsonl"
    path.write_text("null\n" * 6 + "".join(chat_line(i) + "\n" for i in range(3)) + "null\n")
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    assert summary.files[0].format == "openai-chat" and summary.files[0].n_trajectories == 3
    assert [e.record for e in summary.errors] == [f"line {n}" for n in (1, 2, 3, 4, 5, 6, 10)]
    assert all(e.error.endswith("got null") for e in summary.errors)


def test_non_text_parts_are_kept_as_typed_placeholders(lake: Lake, tmp_path: Path):
    png = base64.b64encode(b"\x89PNG" + bytes(24 * 1024 - 4)).decode()
    parts = [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"filename": "report.pdf", "file_id": "file-abc"}},
    ]
    messages = [{"role": "user", "content": parts}, {"role": "assistant", "content": "a chart"}]
    (tmp_path / "chat.jsonl").write_text(json.dumps({"id": "c", "messages": messages}) + "\n")
    claude = [
        {"type": "user", "sessionId": "s1", "uuid": "u1", "message": {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                         "data": png}},
        ]}},
        {"type": "assistant", "sessionId": "s1", "uuid": "u2", "message": {
            "role": "assistant", "id": "m1", "content": [{"type": "text", "text": "a cat"}]}},
    ]  # fmt: skip
    (tmp_path / "session.jsonl").write_text("".join(json.dumps(e) + "\n" for e in claude))
    blob = {"type": "blob", "modality": "image", "mime_type": "image/png", "content": png}
    user = {"role": "user", "parts": [{"type": "text", "content": "see"}, blob]}
    span = chat("7" * 32, "a" * 16, 0, [user], text("assistant", "a dog"))
    (tmp_path / "traces.json").write_text(json.dumps({"resourceSpans": [{"scopeSpans": [
        {"spans": [span]}]}]}))  # fmt: skip
    summary = ingest_paths(lake, [tmp_path])
    assert summary.exit_code == 0, summary.errors
    steps = set(contents(lake))
    assert (
        "what is in these?\n\n[image: image/png, 24 KB]\n\n[audio: wav, 4 B]\n\n"
        "[file: report.pdf, file-abc]"
    ) in steps
    assert "look\n\n[image: image/jpeg, 24 KB]" in steps
    assert "see\n\n[image: image/png, 24 KB]" in steps


@pytest.mark.parametrize("reward", ["NaN", "Infinity", "-Infinity", '"nan"'])
def test_non_finite_reward_is_an_error_naming_the_record(lake: Lake, tmp_path: Path, reward):
    path = tmp_path / "runs.jsonl"
    bad = chat_line(1).replace('"id":', f'"reward": {reward}, "id":')
    path.write_text("\n".join([chat_line(0, reward=1.0), bad, chat_line(2, reward=0.0)]) + "\n")
    summary = ingest_paths(lake, [path])
    assert summary.exit_code == EXIT_PARTIAL
    ((problem),) = summary.errors
    assert problem.record == "line 2" and "is not a finite number" in problem.error
    t = lake.read("trajectories").sort("native_id")
    assert t.select("native_id", "outcome").rows() == [("r0", "success"), ("r2", "failure")]


def test_non_finite_reward_in_a_tau_bench_list_and_in_labels(lake: Lake, tmp_path: Path):
    runs = [{"task_id": i, "trial": 0, "reward": r, "info": {},
             "traj": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
            for i, r in enumerate([1.0, float("nan"), float("inf")])]  # fmt: skip
    path = tmp_path / "gpt-4o-airline.json"
    path.write_text(json.dumps(runs))
    labels = tmp_path / "labels.csv"
    labels.write_text("task_id,reward\n0,1.0\n1,nan\n")
    summary = ingest_paths(lake, [path], labels=labels)
    records = sorted((e.record, "not a finite number" in e.error) for e in summary.errors)
    assert records == [("[1]", True), ("[2]", True), ("row 3", True)]
    assert lake.read("trajectories").height == 1


def test_stale_temp_part_is_removed_by_the_next_ingest(lake: Lake, tmp_path: Path):
    path = write_runs(tmp_path / "runs.jsonl", 2)
    ingest_paths(lake, [path])
    folder = Path(lake.table_dir("trajectories"), f"source={tmp_path.name}")
    stale = folder / ".part-0123abcd.5f0e.tmp"  # named by no writer (an older version's)
    fresh = folder / ".part-4567cdef.9a1b.tmp"  # may be a write still under way
    for temp in (stale, fresh):
        temp.write_bytes(b"PAR1 half written")
    old = time.time() - OBJECT_STORE_GRACE.total_seconds() - 60
    os.utime(stale, (old, old))
    summary = ingest_paths(lake, [path])
    assert not stale.exists() and fresh.exists()
    assert summary.exit_code == 0
    assert lake.read("trajectories").height == 2
    assert pl.read_parquet(lake.parts("trajectories")[0]).height == 2
