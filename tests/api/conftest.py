"""API fixtures: the bundled fixture catalog indexed once per session with the real MiniLM encoder.

Read-only tests share one app over that index; tests that write get their own copy of the index folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.encoders import SentenceTransformerEncoder
from search.engine import Engine
from tests.api.api_support import index_fixture_catalog, make_settings


@pytest.fixture(scope="session")
def fixture_index(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    """The bundled fixture catalog (202 scenes, 70 keyframes, 48 ads, 5 consents), text channels only."""
    db = tmp_path_factory.mktemp("api") / "index"
    index_fixture_catalog(db, text_encoder)
    return db


@pytest.fixture(scope="session")
def client(fixture_index: Path, text_encoder: SentenceTransformerEncoder) -> Iterator[TestClient]:
    """A read-only client over the shared index (tests using it must not write)."""
    engine = Engine.open(fixture_index, text=text_encoder)
    with TestClient(create_app(make_settings(fixture_index), engine)) as test_client:
        yield test_client


@pytest.fixture
def index_copy(fixture_index: Path, tmp_path: Path) -> Path:
    db = tmp_path / "index"
    shutil.copytree(fixture_index, db)
    return db


@pytest.fixture
def app_factory(text_encoder: SentenceTransformerEncoder) -> Iterator[Callable[..., TestClient]]:
    """Build a client over `db` with setting overrides; closed at teardown."""
    opened: list[TestClient] = []

    def build(db: Path, raise_server_exceptions: bool = True, **changes: Any) -> TestClient:
        engine = Engine.open(db, text=text_encoder)
        test_client = TestClient(
            create_app(make_settings(db, **changes), engine), raise_server_exceptions=raise_server_exceptions
        )
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield build
    for test_client in opened:
        test_client.__exit__(None, None, None)


@pytest.fixture
def writer(index_copy: Path, app_factory: Callable[..., TestClient]) -> TestClient:
    """A client over a private copy of the fixture index, for tests that write."""
    return app_factory(index_copy)
