"""A write-ahead journal for llm_calls rows not yet in a Parquet part (local lakes).

Each answered request is appended as one JSON line to ``LAKE/_journal/llm_calls/<writer>.jsonl``
the moment it is logged, and the file is emptied once its rows are in a part. A process killed
between two parts therefore loses only the requests it had in flight: the next `CallLog` on the
lake finds the journal, sees that no live process holds its lock, writes its rows as a part
(skipping rows a part already holds) and deletes it. Each writer holds an exclusive ``flock`` on
its own journal while it lives, which is how a reader tells a dead writer's journal from a live
one. Object-store lakes have no journal: there, the buffer is what a kill can lose.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # no flock (Windows): no journal
    fcntl = None


def _encode(row: dict) -> str:
    return json.dumps(
        {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _decode(line: str) -> dict:
    row = json.loads(line)
    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    return row


class Journal:
    def __init__(self, folder: Path, writer: str):
        self.path = folder / f"{writer}.jsonl"
        self._fh = None

    def _open(self):
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self._fh

    def append(self, row: dict) -> None:
        fh = self._open()
        fh.write(_encode(row) + "\n")
        fh.flush()  # in the OS's hands: survives the process being killed

    def clear(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()

    def close(self) -> None:
        if self._fh is not None:
            self.clear()
            self._fh.close()
            self._fh = None
            self.path.unlink(missing_ok=True)


def journal_folder(lake) -> Path | None:
    if lake is None or not lake.is_local or fcntl is None:
        return None
    return Path(lake.path("_journal", "llm_calls"))


def orphans(folder: Path, own: Path | None) -> list[tuple[Path, list[dict], object]]:
    """Journals of writers that are gone: (path, rows, locked handle to release after use)."""
    found = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        if own is not None and path == own:
            continue
        fh = open(path, "r+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its writer is alive
            fh.close()
            continue
        rows = []
        for line in fh.read().splitlines():
            try:
                rows.append(_decode(line))
            except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                pass  # the last line of a killed writer may be torn
        found.append((path, rows, fh))
    return found


def release(path: Path, fh) -> None:
    os.unlink(path)
    fh.close()
