"""The lake: every table a folder of Parquet parts under one root, local or object store.

Layout: ``LAKE/<table>/[<key>=<value>/]part-<name>.parquet``. A part is written whole or not at
all (temp file + rename on a local disk; a single PUT on an object store), so a crash never leaves
a half-written part and readers never see one. Writers that run at once use distinct part names,
so they cannot corrupt each other. Each writing process is a writer (`writers.py`): its id is in
the names of its unfinished files and in the footers of its parts, so that cleanup can leave
alone what a live process is writing. ``LAKE/_lake.json`` records the schema version.

Reads go through ``scan`` (a polars LazyFrame over every part, partition columns included) or
``dataset`` (a pyarrow dataset, which DuckDB queries in place).

An object-store lake (``s3://bucket/prefix``) goes through pyarrow's filesystem and polars'
object-store reader, configured from the standard AWS environment; nothing here touches a local
path unless ``is_local``. Its storage faults (no bucket, no endpoint, refused credentials) are
raised as `LakeError` naming the lake.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline import schemas, writers
from pipeline.errors import UserError

PART_SUFFIX = ".parquet"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class LakeError(UserError, RuntimeError):
    """The lake cannot be read or written as asked."""


_AWS_HINT = (
    "endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY and AWS_REGION"
)


def _s3(storage_options: dict) -> tuple[pafs.FileSystem, dict]:
    """An S3 filesystem and matching polars storage options from the standard AWS environment.

    Honours AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_REGION (or
    AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for S3-compatible stores.
    """
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    kwargs: dict = {"region": region}
    options = {"aws_region": region}
    if env.get("AWS_ACCESS_KEY_ID"):
        kwargs |= {
            "access_key": env["AWS_ACCESS_KEY_ID"],
            "secret_key": env.get("AWS_SECRET_ACCESS_KEY", ""),
        }
        options |= {
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", ""),
        }
        if env.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = env["AWS_SESSION_TOKEN"]
            options["aws_session_token"] = env["AWS_SESSION_TOKEN"]
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs |= {"endpoint_override": host or scheme, "scheme": scheme if host else "https"}
        options |= {"aws_endpoint_url": endpoint, "aws_allow_http": str(scheme == "http").lower()}
    return pafs.S3FileSystem(**kwargs), options | storage_options


class Lake:
    """A handle on one lake root. Cheap to create; holds no open files."""

    def __init__(self, root: str | os.PathLike, storage_options: dict | None = None):
        self.uri = str(root)
        self.storage_options = storage_options or {}
        self.is_local = "://" not in self.uri or self.uri.startswith("file://")
        if self.is_local:
            self.fs: pafs.FileSystem = pafs.LocalFileSystem()
            self.base = str(Path(self.uri.removeprefix("file://")).resolve())
        elif self.uri.startswith("s3://"):
            self.fs, self.storage_options = _s3(self.storage_options)
            self.base = self.uri.removeprefix("s3://")
        else:
            self.fs, self.base = pafs.FileSystem.from_uri(self.uri)
        self.base = self.base.rstrip("/")

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Storage faults as LakeError naming the lake and the operation."""
        try:
            yield
        except LakeError:
            raise
        except OSError as exc:
            hint = "" if self.is_local else f" ({_AWS_HINT})"
            raise LakeError(f"{self.uri}: cannot {what}: {exc}{hint}") from exc

    def check(self) -> None:
        """Fail early, with one clear message, when an object-store lake cannot be reached or its
        bucket does not exist (a local lake's folder is created on first write)."""
        if self.is_local:
            return
        bucket = self.base.split("/", 1)[0]
        with self._io("reach the store"):
            info = self.fs.get_file_info(bucket)
        if info.type == pafs.FileType.NotFound:
            raise LakeError(f"{self.uri}: bucket {bucket!r} does not exist (create it first)")

    def is_present(self) -> bool:
        """Whether anything was ever written here: the folder of a local lake, the version
        marker of an object-store lake (a mistyped prefix must not read as an empty lake)."""
        if self.is_local:
            return Path(self.base).is_dir()
        with self._io("read the lake marker"):
            return self.fs.get_file_info(self.path("_lake.json")).type == pafs.FileType.File

    # -- paths -------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def url(self, path: str) -> str:
        """A path inside the lake as polars and DuckDB want it (a URI for object stores)."""
        if self.is_local:
            return path
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{path}"

    def table_dir(self, name: str) -> str:
        schemas.table(name)  # unknown names fail loudly
        return self.path(name)

    def _partition_dir(self, name: str, partition: dict[str, str] | None) -> str:
        spec = schemas.table(name)
        partition = partition or {}
        if set(partition) != set(spec.partition_by):
            raise LakeError(
                f"table {name} is partitioned by {list(spec.partition_by)}, got {sorted(partition)}"
            )
        segments = []
        for key in spec.partition_by:
            value = str(partition[key])
            if not _SAFE.match(value):
                raise LakeError(
                    f"partition value {value!r} for {name}.{key} must match {_SAFE.pattern}"
                )
            segments.append(f"{key}={value}")
        return "/".join([self.table_dir(name), *segments])

    # -- writing -----------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the root and its version marker on first use; refuse a lake of a newer schema."""
        marker = self.path("_lake.json")
        with self._io("read the lake marker"):
            info = self.fs.get_file_info(marker)
        if info.type == pafs.FileType.NotFound:
            self.check()
            with self._io("create the lake"):
                self.fs.create_dir(self.base, recursive=True)
                self._put_bytes(
                    marker, json.dumps({"schema_version": schemas.SCHEMA_VERSION}).encode()
                )
            return
        with self._io("read the lake marker"):
            with self.fs.open_input_stream(marker) as fh:
                version = json.loads(fh.read().decode()).get("schema_version", 0)
        if version > schemas.SCHEMA_VERSION:
            raise LakeError(
                f"{self.uri} was written with lake schema {version}; this trace2skill reads up to "
                f"{schemas.SCHEMA_VERSION}: upgrade trace2skill"
            )

    def _put_bytes(self, path: str, data: bytes) -> None:
        if self.is_local:
            tmp = writers.temp_path(self, *path.rsplit("/", 1))
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            with self.fs.open_output_stream(path) as fh:
                fh.write(data)

    def write_part(
        self,
        name: str,
        df: pl.DataFrame,
        *,
        part: str,
        partition: dict[str, str] | None = None,
        validate: bool = True,
    ) -> str:
        """Write `df` as one part, atomically, replacing a part of the same name.

        `df` holds every column of the table; partition columns must be constant and equal to
        `partition` (they live in the folder name, not in the file).
        """
        if not _SAFE.match(part):
            raise LakeError(f"part name {part!r} must match {_SAFE.pattern}")
        spec = schemas.table(name)
        if validate:
            df = schemas.validate(name, df)
        for key in spec.partition_by:
            values = df.get_column(key).unique().to_list() if df.height else []
            if values and values != [str((partition or {}).get(key))]:
                raise LakeError(f"{name}: column {key} holds {values}, partition says {partition}")
        directory = self._partition_dir(name, partition)
        self.ensure()
        final = f"{directory}/part-{part}{PART_SUFFIX}"
        table = schemas.to_arrow(name, df)
        # The footer names the writer: cleanup removes a part left incomplete only once its
        # writer is gone (`writers.remove_abandoned`).
        table = table.replace_schema_metadata(
            {**table.schema.metadata, writers.METADATA_KEY: writers.writer_id(self)}
        )
        with self._io(f"write {name} part {part}"):
            self.fs.create_dir(directory, recursive=True)
            if self.is_local:
                tmp = writers.temp_path(self, directory, f"part-{part}")
                pq.write_table(table, tmp, compression="zstd")
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, final)
            else:
                # One object, uploaded whole: readers never see a partial part.
                pq.write_table(table, final, filesystem=self.fs, compression="zstd")
        return final

    def delete_parts(self, name: str, paths: Iterable[str]) -> int:
        """Delete parts; how many were deleted (one another process deleted first is skipped)."""
        n = 0
        with self._io(f"delete {name} parts"):
            for path in paths:
                try:
                    self.fs.delete_file(path)
                except FileNotFoundError:
                    continue
                n += 1
        return n

    def replace_partition(
        self, name: str, df: pl.DataFrame, partition: dict[str, str], *, part: str = "0"
    ) -> str:
        """Make `df` the whole content of one partition: write it, then drop the older parts."""
        written = self.write_part(name, df, part=part, partition=partition)
        directory = self._partition_dir(name, partition)
        stale = [p for p in self.parts(name) if p.startswith(directory + "/") and p != written]
        self.delete_parts(name, stale)
        return written

    # -- reading -----------------------------------------------------------------------------
    def parts(self, name: str) -> list[str]:
        """Every finished part of a table, sorted; temp files of unfinished writes are skipped."""
        selector = pafs.FileSelector(self.table_dir(name), recursive=True, allow_not_found=True)
        with self._io(f"list {name}"):
            infos = self.fs.get_file_info(selector)
        return sorted(
            info.path
            for info in infos
            if info.type == pafs.FileType.File
            and info.path.endswith(PART_SUFFIX)
            and not info.base_name.startswith(".")
        )

    def exists(self, name: str) -> bool:
        return bool(self.parts(name))

    def scan(self, name: str, files: list[str] | None = None) -> pl.LazyFrame:
        """All rows of a table as a LazyFrame with the registered column order and dtypes.

        `files` limits the scan to those parts (paths as `parts` gives them): a worker that was
        told where its rows are reads only those files.
        """
        spec = schemas.table(name)
        files = self.parts(name) if files is None else files
        if not files:
            return schemas.empty(name).lazy()
        hive = {k: spec.columns[k] for k in spec.partition_by}
        # The registered schema, not the first part's: parts written before a column was added
        # read back with that column null.
        in_files = {c: dt for c, dt in spec.columns.items() if c not in spec.partition_by}
        lf = pl.scan_parquet(
            [self.url(f) for f in files],
            schema=in_files,
            hive_partitioning=bool(hive),
            hive_schema=hive or None,
            storage_options=self.storage_options or None,
            missing_columns="insert",
            extra_columns="ignore",
        )
        return lf.select([pl.col(c).cast(dt) for c, dt in spec.columns.items()])

    def read(self, name: str) -> pl.DataFrame:
        return self.scan(name).collect()

    def dataset(self, name: str) -> pads.Dataset:
        """A pyarrow dataset over the table's parts (for DuckDB), partition columns included."""
        spec = schemas.table(name)
        schema = schemas.arrow_schema(name, with_partitions=True)
        files = self.parts(name)
        if not files:
            return pads.dataset(schema.empty_table())
        return pads.dataset(
            files,
            schema=schema,
            format="parquet",
            filesystem=self.fs,
            partitioning=pads.partitioning(
                pa.schema([schema.field(k) for k in spec.partition_by]), flavor="hive"
            )
            if spec.partition_by
            else None,
            partition_base_dir=self.table_dir(name),
        )
