"""Constants and helpers shared by the API test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.settings import Settings
from indexer.encoders import Encoder
from indexer.location import IndexLocation
from indexer.pipeline import Encoders, IndexOptions, index_catalog

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CATALOG = FIXTURES / "catalog"
READ_KEY = "test-read-key-0123456789"
WRITE_KEY = "test-write-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
KEYS: dict[str, list[Any]] = {READ_KEY: ["read"], WRITE_KEY: ["write"], ADMIN_KEY: ["admin"]}
READ = {"X-API-Key": READ_KEY}
WRITE = {"X-API-Key": WRITE_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}


def index_fixture_catalog(db: Path | IndexLocation, text_encoder: Encoder) -> None:
    """The bundled fixture catalog (202 scenes, 70 keyframes, 48 ads, 5 consents) into `db`, text channels only."""
    options = IndexOptions(db=db, use_clip=False, media_root=FIXTURES, progress=False)
    report = index_catalog(
        options,
        CATALOG / "scenes.jsonl",
        CATALOG / "ads.jsonl",
        CATALOG / "consents.jsonl",
        encoders=Encoders(text_encoder, None, None),
    )
    assert report.errors == [] and report.scenes > 0


def make_settings(db: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {"db": db, "api_keys": KEYS, "refresh_interval_s": 0, "version_wait_s": 0.5, **changes}
    return Settings(**values)


def scene_ids(response: Any) -> list[str]:
    return [hit["scene_id"] for hit in response.json()["scenes"]]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape, with the expected status and code; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error
