"""Versions of a published skill folder, kept in the lake so any of them can be read and diffed.

A version is a folder's content: its id is a digest of the sorted relative paths and the sha256
of each file's bytes, so the same content is the same version, whoever wrote it and when.
`publish_version` wraps `pipeline.skill.publish.publish`: it notes the version live at OUT,
publishes, and writes the new version to `skill_files` (one row per file, its text) and then
`skill_versions` (one row per version; the row says its files are complete), with the version
that was live as its parent. A version already recorded is not written again, so a rerun that
changes nothing adds nothing. A live folder the lake does not know (written before versions were
recorded, or when recording failed) is recorded first, as found, so the chain has no gap.
Reads `skill_versions` and `skill_files` back (`recorded`, `resolve`, `version_files`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import socket
from pathlib import Path

import duckdb
import polars as pl

from pipeline import sql
from pipeline.console import Console
from pipeline.ids import digest
from pipeline.lake import Lake, LakeError
from pipeline.skill import provenance
from pipeline.skill.diff import EVIDENCE, file_statements, run_statements
from pipeline.skill.folder import SKILL_FILE, folder_run
from pipeline.skill.publish import publish

ACTOR_ENV = "T2S_ACTOR"


class VersionError(ValueError):
    """A version cannot be found or named as asked."""


def actor() -> str:
    """Who publishes: T2S_ACTOR if set (a CI job, a service account), else user@host."""
    if named := os.environ.get(ACTOR_ENV, "").strip():
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def folder_files(directory: Path) -> dict[str, bytes]:
    """Every file of a folder by relative POSIX path, sorted; links inside it are not followed."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for name in filenames:
            path = here / name
            if not path.is_symlink():
                files[path.relative_to(directory).as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_id(files: dict[str, bytes]) -> str:
    return digest("skill-version", [[path, file_digest(files[path])] for path in sorted(files)])


def live_files(out: Path) -> dict[str, bytes] | None:
    """The files of the skill OUT shows now, None when it shows none."""
    return folder_files(out) if (out / SKILL_FILE).is_file() else None


def same_out(a: str, b: str) -> bool:
    """Two spellings of one folder (relative ones are read from the working folder)."""
    return Path(a) == Path(b) or Path(a).resolve() == Path(b).resolve()


def recorded(lake: Lake, out: str | None = None) -> pl.DataFrame:
    """Recorded versions, newest first; only those published at `out` when given."""
    with sql.connect(lake) as con:
        return published_at(sql.query(con, "skill_versions_list"), out)


def published_at(versions: pl.DataFrame, out: str | None) -> pl.DataFrame:
    if out is None:
        return versions
    return versions.filter(
        pl.col("out").map_elements(lambda o: same_out(o, out), return_dtype=pl.Boolean)
    )


def version_files(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, str]:
    files = sql.query(con, "skill_versions_files", version_id=version)
    return dict(zip(files["file"].to_list(), files["text"].to_list(), strict=True))


def version_statements(con: duckdb.DuckDBPyConnection, version: dict) -> pl.DataFrame:
    """A recorded version's statements: its run's, else its files' lines (no evidence)."""
    statements = run_statements(con, version["run_id"])
    if statements.height:
        return statements
    return file_statements(version_files(con, version["version_id"]))


# skill_lines as statement lines: provenance's columns, keyed by statement, with the evidence
LINE_COLUMNS = {
    "statement_key": pl.String,
    **provenance.LINE_COLUMNS,
    "cluster_ids": pl.List(pl.String),
    "lesson_ids": pl.List(pl.String),
    "merge_node_id": pl.String,
    **{c: pl.Int64 for c in EVIDENCE},
}


def run_lines(con: duckdb.DuckDBPyConnection, run_id: str | None) -> pl.DataFrame:
    """Every `skill_lines` row of a run, with the key of the statement it belongs to."""
    if run_id is None:
        return pl.DataFrame(schema=LINE_COLUMNS)
    lines = sql.query(con, "skill_run_lines", run_id=run_id)
    return lines.select([pl.col(c).cast(t) for c, t in LINE_COLUMNS.items()])


def version_lines(con: duckdb.DuckDBPyConnection, version: dict | None) -> pl.DataFrame:
    """A recorded version's statement lines: its run's, else each line of its files alone."""
    if version is None:
        return pl.DataFrame(schema=LINE_COLUMNS)
    lines = run_lines(con, version["run_id"])
    if lines.height:
        return lines
    return lines_alone(version_files(con, version["version_id"]))


def lines_alone(files: dict[str, str]) -> pl.DataFrame:
    """The lines of Markdown files as statements of their own, with no lessons behind them."""
    alone = file_statements(files)
    return alone.with_columns(
        cluster_ids=pl.lit([], pl.List(pl.String)), merge_node_id=pl.lit(None, pl.String)
    ).select([pl.col(c).cast(t) for c, t in LINE_COLUMNS.items()])


def resolve(lake: Lake, ref: str, out: str | None = None) -> dict:
    """The recorded version `ref` names: an id or a unique prefix of one, `live:OUT` (the one
    the folder OUT shows), or `latest` / `previous` (the newest at `out` and its parent)."""
    versions = recorded(lake)
    by_id = {r["version_id"]: r for r in versions.iter_rows(named=True)}
    if ref.startswith("live:"):
        folder = ref.removeprefix("live:")
        files = live_files(Path(folder))
        if files is None:
            raise VersionError(f"{folder} shows no skill folder (no {SKILL_FILE})")
        vid = version_id(files)
        if vid not in by_id:
            raise VersionError(
                f"the skill at {folder} (version {vid}) is not recorded in {lake.uri}"
            )
        return by_id[vid]
    if ref in ("latest", "previous"):
        at = published_at(versions, out)
        if out is None and at["out"].n_unique() > 1:
            raise VersionError(f"{ref!r} needs --out: the lake holds versions of several folders")
        if at.height == 0:
            raise VersionError(f"no versions recorded{f' at {out}' if out else ''} in {lake.uri}")
        latest = at.row(0, named=True)
        if ref == "latest":
            return latest
        parent = latest["parent_version_id"]
        if parent not in by_id:
            raise VersionError(f"version {latest['version_id']} is the first: it has no previous")
        return by_id[parent]
    matches = [v for v in by_id if v.startswith(ref.lower())] if ref else []
    if len(matches) == 1:
        return by_id[matches[0]]
    if not matches:
        raise VersionError(f"no version {ref!r} in {lake.uri} (`trace2skill versions` lists them)")
    listed = ", ".join(sorted(matches)[:5])
    raise VersionError(f"{ref!r} names {len(matches)} versions ({listed}): give more of the id")


def _text(data: bytes) -> tuple[str, bytes | None]:
    """A file as text, and its bytes too when they are not UTF-8 (kept whole)."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), data


def record_files(lake: Lake, files: dict[str, bytes]) -> str:
    """Keep a folder's files in `skill_files` under its version id (no version row): a
    consolidation's folder and a proposal's can then be read back whatever becomes of them on
    disk."""
    vid = version_id(files)
    texts = [_text(data) for data in files.values()]
    frame = pl.DataFrame(
        {
            "version_id": vid,
            "file": list(files),
            "text": [t for t, _ in texts],
            "data": [b for _, b in texts],
            "digest": [file_digest(data) for data in files.values()],
        },
        schema={
            "version_id": pl.String,
            "file": pl.String,
            "text": pl.String,
            "data": pl.Binary,
            "digest": pl.String,
        },  # fmt: skip
    )
    lake.replace_partition("skill_files", frame, {"version_id": vid})
    return vid


def version_bytes(con: duckdb.DuckDBPyConnection, version: str) -> dict[str, bytes]:
    """A recorded folder's files as they were, byte for byte."""
    files = sql.query(con, "skill_versions_files", version_id=version)
    return {
        f: data if data is not None else text.encode("utf-8")
        for f, text, data in files.select("file", "text", "data").iter_rows()
    }


def _record(lake: Lake, files: dict[str, bytes], row: dict, known: set[str]) -> str:
    """Write one version (its files first, then its row) unless it is known; returns its id."""
    vid = version_id(files)
    if vid in known:
        return vid
    with sql.connect(lake) as con:
        statements = run_statements(con, row["run_id"])
    if statements.height == 0:
        texts = {p: data.decode("utf-8", errors="replace") for p, data in files.items()}
        statements = file_statements(texts)
    record_files(lake, files)
    version = row | {"version_id": vid, "n_statements": statements.height, "n_files": len(files)}
    lake.replace_partition("skill_versions", pl.DataFrame([version]), {"version_id": vid})
    known.add(vid)
    return vid


def record_live(lake: Lake, out: Path, skill_name: str, console: Console) -> str | None:
    """The version OUT shows, recorded first (as found) when the lake does not know it; else,
    with no folder at OUT, the newest recorded there; None when there is neither."""
    versions = recorded(lake)
    known = set(versions["version_id"].to_list())
    at_out = published_at(versions, str(out))
    parent = at_out["version_id"][0] if at_out.height else None
    files = live_files(out)
    if files is None:
        return parent
    if version_id(files) in known:
        return version_id(files)
    console.info(f"recording the skill found at {out} as a version")
    found_at = dt.datetime.fromtimestamp((out / SKILL_FILE).stat().st_mtime, dt.UTC)
    found = {"parent_version_id": parent, "run_id": folder_run(out), "created_at": found_at,
             "created_by": None, "skill_name": skill_name, "out": str(out)}  # fmt: skip
    return _record(lake, files, found, known)


def publish_version(
    lake: Lake, staged: Path, out: Path, run_id: str, skill_name: str, console: Console
) -> str | None:
    """Publish `staged` at OUT (holding `writer_lock`) and record it; returns its version id.

    The folder is live once published: a lake that cannot be written costs the record, with a
    warning, not the run (the next run records the folder it finds)."""
    try:
        parent = record_live(lake, out, skill_name, console)
    except (LakeError, OSError) as exc:
        parent, failed = None, exc
    else:
        failed = None
    publish(staged, out, run_id)
    try:
        if failed is not None:
            raise failed
        row = {
            "parent_version_id": parent,
            "run_id": run_id,
            "skill_name": skill_name,
            "out": str(out),
            "created_at": dt.datetime.now(dt.UTC),
            "created_by": actor(),
        }
        current = live_files(out) or {}
        vid = version_id(current)
        if vid == parent:
            console.info(f"skill unchanged: version {vid}")
            return vid
        _record(lake, current, row, set(recorded(lake)["version_id"].to_list()))
        console.info(f"skill version {vid}" + (f", after {parent}" if parent else ", the first"))
        return vid
    except (LakeError, OSError) as exc:
        console.warn(f"the skill is published at {out} but its version was not recorded: {exc}")
        return None
