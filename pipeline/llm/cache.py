"""llm_calls as cache and log in one: an index of answered keys, and a buffered writer.

Reads ``LAKE/llm_calls`` once per `CallLog` (the key column of every part: which part holds the
latest servable answer of each key) and fetches answers part by part when asked. Writes rows in
a buffer flushed as one new part every ``flush_rows`` rows or ``flush_s`` seconds and on close;
part names carry the time, the process id and a random token, so several processes can write at
once and a kill loses at most the unflushed rows. A row is servable when it has neither an error
nor ``cache_hit``; error rows are kept as a log but never answer a request.

On a local lake every row is also appended to a journal the moment it is logged (see
`pipeline.llm.journal`), so a kill between two parts loses only the requests in flight: the next
`CallLog` on the lake writes a dead writer's journal as a part before reading the index.

Without a lake the log lives in memory: identical requests of one process are still answered once.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import time
import uuid
import weakref
from collections import OrderedDict
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas
from pipeline.ids import digest
from pipeline.lake import Lake
from pipeline.llm import journal as wal

TABLE = "llm_calls"
Answer = tuple[str | None, list[float] | None]  # (response JSON, vector)

_DEFAULTS: dict[str, Any] = {
    "prompt_version": None,
    "response": None,
    "vector": None,
    "finish_reason": None,
    "tag": None,
    "tokens_in": 0,
    "tokens_out": 0,
    "latency_ms": 0.0,
    "cost_usd": 0.0,
    "attempts": 0,
    "error": None,
    "error_kind": None,
    "mode": None,
    "reasoning": None,
    "cache_hit": False,
    "batch_id": None,
}


class CallLog:
    def __init__(
        self,
        lake: Lake | None,
        *,
        flush_rows: int = 1000,
        flush_s: float = 10.0,
        parts_cached: int = 64,
    ):
        self.lake = lake
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.parts_cached = parts_cached
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.rows_written = 0
        self.parts_written: list[str] = []
        self._buffer: list[dict] = []
        self._seq = 0
        self._last_flush = time.monotonic()
        self._index: dict[str, str] | None = None  # key -> part holding its latest answer
        self._fresh: dict[str, Answer] = {}  # answers not yet in a part
        self._parts: OrderedDict[str, dict[str, Answer]] = OrderedDict()
        folder = wal.journal_folder(lake)
        self.journal = wal.Journal(folder, self.token) if folder is not None else None
        self.recovered = 0  # rows of killed writers written as parts by this log
        self.unreadable: list[str] = []  # parts that could not be read, with why
        if lake is not None:  # a caller that never closes still gets its rows written
            ref = weakref.ref(self)
            atexit.register(lambda: (log := ref()) is not None and log._flush_at_exit())

    def _flush_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # the journal keeps the rows for the next reader
            pass

    # -- recovery ----------------------------------------------------------------------------
    def recover(self) -> int:
        """Write the journals of writers that died as parts; how many rows that was."""
        before = self.recovered
        self._recover()
        return self.recovered - before

    def _recover(self) -> None:
        folder = wal.journal_folder(self.lake)
        if folder is None:
            return
        own = self.journal.path if self.journal is not None else None
        for path, rows, handle in wal.orphans(folder, own):
            if rows:
                present = set(self.lake.scan(TABLE).select("call_id").collect()["call_id"])
                rows = [r for r in rows if r["call_id"] not in present]
            if rows:
                frame = pl.DataFrame(rows, schema=schemas.table(TABLE).columns)
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
                self.lake.write_part(TABLE, frame, part=f"{stamp}-recovered-{path.stem}")
                self.recovered += len(rows)
            wal.release(path, handle)

    # -- reading -----------------------------------------------------------------------------
    def _load_index(self) -> dict[str, str]:
        if self._index is None:
            self._index = {}
            if self.lake is not None:
                self._recover()
                for path in self.lake.parts(TABLE):  # sorted by name, so by time: later wins
                    try:
                        table = pq.read_table(
                            path, columns=["key", "error", "cache_hit"], filesystem=self.lake.fs
                        )
                    except (pa.ArrowException, OSError) as exc:
                        self.unreadable.append(f"{path}: {exc}")
                        continue  # a cache: its answers are asked again
                    ok = pc.and_(pc.is_null(table["error"]), pc.invert(table["cache_hit"]))
                    keys = table.filter(ok)["key"].to_pylist()
                    self._index.update(dict.fromkeys(keys, path))
        return self._index

    def has(self, key: str) -> bool:
        return key in self._fresh or key in self._load_index()

    def __len__(self) -> int:
        return len(self._load_index().keys() | self._fresh.keys())

    def _part(self, path: str) -> dict[str, Answer]:
        answers = self._parts.get(path)
        if answers is None:
            table = pq.read_table(
                path,
                columns=["key", "response", "vector", "error", "cache_hit"],
                filesystem=self.lake.fs,
            )
            ok = pc.and_(pc.is_null(table["error"]), pc.invert(table["cache_hit"]))
            table = table.filter(ok)
            answers = dict(
                zip(
                    table["key"].to_pylist(),
                    zip(table["response"].to_pylist(), table["vector"].to_pylist(), strict=True),
                    strict=True,
                )
            )
            self._remember(path, answers)
        self._parts.move_to_end(path)
        return answers

    def _remember(self, path: str, answers: dict[str, Answer]) -> None:
        self._parts[path] = answers
        while len(self._parts) > self.parts_cached:
            self._parts.popitem(last=False)

    def get_many(self, keys: list[str]) -> dict[str, Answer]:
        """The servable answer of every key that has one, reading each part once."""
        index = self._load_index()
        found: dict[str, Answer] = {}
        by_part: dict[str, list[str]] = {}
        for key in dict.fromkeys(keys):
            if key in self._fresh:
                found[key] = self._fresh[key]
            elif key in index:
                by_part.setdefault(index[key], []).append(key)
        for path, wanted in sorted(by_part.items()):
            answers = self._part(path)
            found.update((k, answers[k]) for k in wanted if k in answers)
        return found

    def get(self, key: str) -> Answer | None:
        return self.get_many([key]).get(key)

    # -- writing -----------------------------------------------------------------------------
    def add(self, **fields: Any) -> dict:
        """Log one row (missing columns take their defaults); flush when the buffer is due."""
        now = dt.datetime.now(dt.UTC)
        self._seq += 1
        row = _DEFAULTS | fields
        row["call_id"] = digest(row["key"], self.token, self._seq)
        row["created_at"] = now
        self._buffer.append(row)
        if self.journal is not None:
            self.journal.append(row)
        if row["error"] is None and not row["cache_hit"]:
            self._fresh[row["key"]] = (row["response"], row["vector"])
        self.maybe_flush()
        return row

    def maybe_flush(self) -> None:
        if self.flush_due():
            self.flush()

    def flush_due(self, rows_ahead: int = 0) -> bool:
        """Whether the buffer is due to be written, or nearly (`rows_ahead` more rows, or nine
        tenths of its time): a caller that knows a quiet moment flushes then, not mid-burst."""
        if not self._buffer:
            return False
        waited = time.monotonic() - self._last_flush
        if rows_ahead:
            return len(self._buffer) + rows_ahead >= self.flush_rows or waited >= 0.9 * self.flush_s
        return len(self._buffer) >= self.flush_rows or waited >= self.flush_s

    def flush(self) -> None:
        """Write the buffered rows as one new part (no-op without a lake or rows)."""
        self._last_flush = time.monotonic()
        if self.lake is None or not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        frame = pl.DataFrame(rows, schema=schemas.table(TABLE).columns)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{self.token}-{len(self.parts_written):05d}"
        path = self.lake.write_part(TABLE, frame, part=name)
        if self.journal is not None:
            self.journal.clear()
        self.parts_written.append(path)
        self.rows_written += len(rows)
        flushed = {
            r["key"]: (r["response"], r["vector"])
            for r in rows
            if r["error"] is None and not r["cache_hit"]
        }
        index = self._load_index()
        for key in flushed:
            index[key] = path
            self._fresh.pop(key, None)
        self._remember(path, flushed)

    def close(self) -> None:
        """Flush, then drop this writer's (empty) journal."""
        self.flush()
        if self.journal is not None:
            self.journal.close()

    @property
    def pending(self) -> int:
        return len(self._buffer)
