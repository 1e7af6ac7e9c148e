"""One raw input file in memory: its bytes, its text, and careful JSON reading.

Files must be UTF-8 (a byte-order mark is tolerated). UTF-16 files are refused as a whole with a
remedy. Bytes that are not UTF-8 inside an otherwise good file (typically latin-1) are kept as
surrogates (``surrogateescape``) so that only the records that contain them are skipped: the
adapters ask ``bad_utf8_in(start, end)`` for a record's span.

JSON documents are parsed whole on the fast path. A document that does not parse, or holds bytes
that are not UTF-8, is read element by element when it is a list, so every record before the
damage (and every clean record around bad bytes) is still read. JSON nested deeper than Python's
parser can follow (``[[[[...``) is a bad record of a JSONL file, or a FileError for a document,
never a crash.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.record import BadRecord

_BAD = re.compile("[\udc80-\udcff]")
_WS = re.compile(r"[ \t\n\r]*")
_SNIFF_LINES = 50  # lines looked at for a complete JSON object when the first line is damaged
_DECODER = json.JSONDecoder()


class FileError(ValueError):
    """The file as a whole cannot be read (the message names the problem and the remedy)."""


class TooDeep(ValueError):
    """JSON nested deeper than the parser can follow."""

    def __init__(self) -> None:
        super().__init__("JSON nested too deeply to read (hundreds of levels of [ or {)")


def loads(text: str) -> Any:
    """json.loads, with nesting too deep for the parser as a ValueError (TooDeep)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep() from None


def _raw_decode(text: str, pos: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise TooDeep() from None


@dataclass
class RawFile:
    path: Path
    display: str  # the path as the user will recognise it
    data: bytes
    too_deep: bool = field(default=False, init=False)  # some JSON in it was nested too deeply

    @classmethod
    def read(cls, path: Path, display: str | None = None) -> RawFile:
        return cls(path, display or str(path), path.read_bytes())

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def is_parquet(self) -> bool:
        return self.data[:4] == b"PAR1"

    @cached_property
    def parquet_columns(self) -> list[str]:
        """The column names of a Parquet file; [] for other files and unreadable ones (the
        reader that takes the file reports what is wrong with it)."""
        if not self.is_parquet:
            return []
        try:
            return pq.read_schema(pa.BufferReader(self.data)).names
        except Exception:
            return []

    @cached_property
    def text(self) -> str:
        data = self.data
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(data[:4096]):
            raise FileError(
                "file is UTF-16 encoded; trace2skill reads UTF-8: convert it "
                f"(iconv -f UTF-16 -t UTF-8 {self.display} > out) and ingest the result"
            )
        if data[:3] == b"\xef\xbb\xbf":
            data = data[3:]
        try:
            text = data.decode("utf-8")
            self.has_bad_utf8 = False
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="surrogateescape")
            self.has_bad_utf8 = True
        return text

    @cached_property
    def has_bad_utf8(self) -> bool:
        self.text  # noqa: B018 (decoding sets the flag)
        return self.__dict__["has_bad_utf8"]

    def bad_utf8_in(self, start: int, end: int) -> str | None:
        """An error message if text[start:end] holds bytes that are not UTF-8, else None."""
        if not self.has_bad_utf8:
            return None
        m = _BAD.search(self.text, start, end)
        if m is None:
            return None
        byte = ord(m.group()) - 0xDC00
        return (
            f"not valid UTF-8 (byte 0x{byte:02X} at line {self.line_of(m.start())}); the file "
            "looks latin-1 (or another 8-bit) encoded: re-save it as UTF-8"
        )

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0] + [m.end() for m in re.finditer("\n", self.text)]

    def line_offset(self, index: int) -> int:
        """Character offset where 0-based line `index` starts."""
        return self._line_starts[index]

    def line_of(self, offset: int) -> int:
        """1-based line number of a character offset."""
        return bisect.bisect_right(self._line_starts, offset)

    # -- JSON ------------------------------------------------------------------------------
    @cached_property
    def looks_like_json(self) -> bool:
        head = self.text[:64].lstrip()
        return head[:1] in ("{", "[")

    @cached_property
    def is_jsonl(self) -> bool:
        """Several JSON values, one per line: the file starts with '{' (or with a line that is a
        complete JSON value of its own, such as ``null``) and its first line, or (when that line
        is damaged or not an object) another of its first lines that starts with '{', is a
        complete object on its own. A pretty-printed document has no such line: its inner
        objects are indented, and its first line is a bare '{' or '['."""
        text = self.text
        start = _WS.match(text, 0).end()
        end = text.find("\n", start)
        first = text[start:] if end < 0 else text[start:end]
        if first[:1] != "{" and not _is_json(first):
            return False
        if end < 0 or not text[end : end + 4096].strip():
            return False
        pos = start
        for _ in range(_SNIFF_LINES):
            line = text[pos:] if end < 0 else text[pos:end]
            if line.startswith("{") and _is_object(line):
                return True
            if end < 0:
                return False
            pos = end + 1
            end = text.find("\n", pos)
        return False

    def jsonl(self) -> Iterator[tuple[int, Any]]:
        """(line number, parsed value or BadRecord) for every non-blank line."""
        text = self.text
        pos = 0
        line_no = 0
        n = len(text)
        while pos < n:
            end = text.find("\n", pos)
            if end < 0:
                end = n
            line_no += 1
            line = text[pos:end]
            start = pos
            pos = end + 1
            if not line.strip():
                continue
            record = f"line {line_no}"
            bad = self.bad_utf8_in(start, end)
            if bad:
                yield line_no, BadRecord(record, bad)
                continue
            try:
                yield line_no, loads(line)
            except TooDeep as exc:
                self.too_deep = True
                yield line_no, BadRecord(record, str(exc))
            except ValueError as exc:
                what = "truncated" if end == n and not text.endswith("\n") else "invalid"
                yield line_no, BadRecord(record, f"{what} JSON: {_short(exc, in_line=True)}")

    @cached_property
    def doc(self) -> Any:
        """The whole file as one JSON value (fast path); FileError naming the position if not."""
        try:
            return loads(self.text)
        except TooDeep as exc:
            self.too_deep = True
            raise FileError(str(exc)) from None
        except ValueError as exc:
            raise FileError(f"not valid JSON: {_short(exc)}") from None

    def json_records(self) -> Iterator[tuple[int | None, Any]]:
        """A JSON document's records: (index, value or BadRecord) for a list, (None, doc) else.

        Damaged lists are read element by element: records before the damage and records free
        of bad bytes are kept; the damage itself becomes a BadRecord naming index and line.
        """
        if not self.has_bad_utf8:
            try:
                doc = self.doc
            except FileError:
                if not self.text.lstrip().startswith("["):
                    raise
            else:
                if isinstance(doc, list):
                    yield from enumerate(doc)
                else:
                    yield None, doc
                return
        elif not self.text.lstrip().startswith("["):
            raise FileError(self.bad_utf8_in(0, len(self.text)) or "not valid UTF-8")
        yield from self._salvage_list()

    def _salvage_list(self) -> Iterator[tuple[int, Any]]:
        text = self.text
        pos = _WS.match(text, 0).end() + 1  # past "["
        index = 0
        while True:
            pos = _WS.match(text, pos).end()
            if pos >= len(text):
                yield index, BadRecord(f"[{index}]", "truncated JSON: the list is not closed")
                return
            if text[pos] == "]" and index == 0:
                return
            start = pos
            try:
                value, pos = _raw_decode(text, pos)
            except ValueError as exc:
                self.too_deep = self.too_deep or isinstance(exc, TooDeep)
                yield (
                    index,
                    BadRecord(
                        f"[{index}]",
                        f"invalid JSON at line {self.line_of(start)}: {_short(exc)}; this record "
                        "and the rest of the file could not be read",
                    ),
                )
                return
            bad = self.bad_utf8_in(start, pos)
            yield index, (BadRecord(f"[{index}]", bad) if bad else value)
            index += 1
            pos = _WS.match(text, pos).end()
            if pos >= len(text):
                yield index, BadRecord(f"[{index}]", "truncated JSON: the list is not closed")
                return
            if text[pos] == "]":
                return
            if text[pos] != ",":
                yield (
                    index,
                    BadRecord(
                        f"[{index}]",
                        f"invalid JSON at line {self.line_of(pos)}: expected ',' or ']' between "
                        "records; the rest of the file could not be read",
                    ),
                )
                return
            pos += 1


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text with a NUL in every other byte."""
    if len(head) < 8:
        return False
    return head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4


def _short(exc: ValueError, in_line: bool = False) -> str:
    if isinstance(exc, json.JSONDecodeError):
        where = f"column {exc.colno}" if in_line else f"line {exc.lineno} column {exc.colno}"
        return f"{exc.msg} ({where})"
    return str(exc)[:200]


def _is_object(line: str) -> bool:
    try:
        return isinstance(loads(line), dict)
    except ValueError:
        return False


def _is_json(line: str) -> bool:
    """A complete JSON value on one line (not a bare '[' or '{' opening a document), or one
    nested too deeply to tell: either way a line of its own, as in JSON lines."""
    try:
        loads(line)
    except TooDeep:
        return True
    except ValueError:
        return False
    return True
