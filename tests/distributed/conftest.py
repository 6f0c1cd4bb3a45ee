"""Object-storage fixtures: a real moto S3 server on a free loopback port (session-scoped), the bundled
fixture catalog indexed once into it and once into a local folder, and private copies for tests that write."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto", reason="needs the distributed extra: pip install -e '.[distributed]'")
pytest.importorskip("boto3", reason="needs the distributed extra: pip install -e '.[distributed]'")

from indexer.encoders import SentenceTransformerEncoder
from indexer.location import IndexLocation
from tests.api.api_support import index_fixture_catalog

BUCKET = "vi-test"
_copies = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def options(self) -> dict[str, str]:
        """Storage options as LanceDB (object_store) names them."""
        return {
            "aws_endpoint": self.endpoint,
            "allow_http": "true",
            "region": "us-east-1",
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }

    def location(self, prefix: str) -> IndexLocation:
        return IndexLocation.of(f"s3://{BUCKET}/{prefix}", self.options)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server (`python -m moto.server`) on 127.0.0.1, with one bucket; stopped at the end."""
    import boto3

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        server = S3Server(f"http://127.0.0.1:{port}")
        opts = server.options
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=opts["region"],
            aws_access_key_id=opts["aws_access_key_id"],
            aws_secret_access_key=opts["aws_secret_access_key"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_index(s3_server: S3Server, text_encoder: SentenceTransformerEncoder) -> IndexLocation:
    """The fixture catalog indexed into s3://vi-test/fixture (text channels, thumbnails included)."""
    location = s3_server.location("fixture")
    index_fixture_catalog(location, text_encoder)
    return location


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """One local Ray for the whole session, as a CI machine has it: 2 CPUs, no dashboard."""
    pytest.importorskip("ray", reason="needs the distributed extra: pip install -e '.[distributed]'")
    from indexer import ray_ingest

    with ray_ingest.ray_session(ray_ingest.RayOptions(num_cpus=2)) as session:
        yield session


@pytest.fixture(scope="session")
def local_index(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    db = tmp_path_factory.mktemp("local") / "index"
    index_fixture_catalog(db, text_encoder)
    return db


def copy_index(server: S3Server, source: IndexLocation) -> IndexLocation:
    """A private copy of an index on the same server (Lance datasets use relative paths, so a copy opens)."""
    from pyarrow import fs

    from indexer.location import filesystem

    target = server.location(f"copy-{os.getpid()}-{next(_copies)}")
    store = filesystem(source)
    fs.copy_files(
        source.uri.removeprefix("s3://"),
        target.uri.removeprefix("s3://"),
        source_filesystem=store,
        destination_filesystem=store,
    )
    return target


@pytest.fixture
def s3_copy(s3_server: S3Server, s3_index: IndexLocation) -> IndexLocation:
    return copy_index(s3_server, s3_index)
