"""S3 for the scale tests: a moto server on loopback, started once per session.

`s3` (module-scoped) sets the standard AWS environment to point at it for the module's tests and
hands out fresh buckets: ``s3.lake("name")`` is a `Lake` at ``s3://<fresh bucket>/lake``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs
import pytest

from pipeline.lake import Lake

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


_BUCKETS = itertools.count()


@dataclass
class S3:
    endpoint: str

    def bucket(self, name: str) -> str:
        """A new, empty bucket (names are unique across the session)."""
        bucket = f"{name.replace('_', '-').lower()[:40]}-{next(_BUCKETS)}"
        pafs.S3FileSystem(
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            access_key="test",
            secret_key="test",
            region="us-east-1",
            allow_bucket_creation=True,
        ).create_dir(bucket)
        return bucket

    def lake(self, name: str = "lake") -> Lake:
        return Lake(f"s3://{self.bucket(name)}/lake")


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Iterator[S3]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "test")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test")
        mp.setenv("AWS_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", s3_endpoint)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        yield S3(s3_endpoint)


@pytest.fixture
def s3_lake(s3: S3, request: pytest.FixtureRequest) -> Lake:
    return s3.lake(request.node.name)
