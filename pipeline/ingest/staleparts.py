"""Temporary part files an interrupted ingest left behind, removed by the next ingest.

A local lake writes each part to ``.part-<name>.<random>.tmp`` beside its final name and renames
it when whole (see ``pipeline.lake``). An ingest killed between the two leaves the temp file:
no reader sees it, but nothing else would ever remove it. The next ingest removes those under
the tables ingest writes once they are older than ``STALE_AFTER_SECONDS``; a younger one may
belong to a write still under way in another process. An object-store lake writes each part in
one request and leaves no temp file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.lake import TMP_SUFFIX, Lake

STALE_AFTER_SECONDS = 3600  # no single part write takes this long
INGEST_TABLES = ("trajectories", "steps", "ingest_errors", "ingest_files")


def remove_stale_temp_parts(lake: Lake, now: float | None = None) -> tuple[int, list[str]]:
    """Remove the temp part files under the ingest tables not modified for
    STALE_AFTER_SECONDS; returns how many were removed and, for each one that could not be,
    the file and the reason."""
    if not lake.is_local:
        return 0, []
    cutoff = (time.time() if now is None else now) - STALE_AFTER_SECONDS
    removed, problems = 0, []
    for table in INGEST_TABLES:
        for folder, _, names in os.walk(lake.table_dir(table)):
            for name in names:
                if not (name.startswith(".part-") and name.endswith(TMP_SUFFIX)):
                    continue
                path = Path(folder, name)
                try:
                    if path.stat().st_mtime >= cutoff:
                        continue
                    path.unlink()
                    removed += 1
                except FileNotFoundError:  # renamed or removed by its writer meanwhile
                    continue
                except OSError as exc:
                    problems.append(f"{path}: {exc.strerror or exc}")
    return removed, problems
