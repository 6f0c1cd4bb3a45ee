"""API keys and scopes: 401 vs 403, nested scopes, constant-time comparison, startup refusal, no key leaks."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.security import KeyRing
from api.settings import Settings
from tests.api.api_support import ADMIN, ADMIN_KEY, READ, READ_KEY, WRITE, WRITE_KEY, assert_error

SEARCH = {"query": "cozy evening on a leather sofa"}
SCENE = {"scene_id": "scn-auth-1", "prompt": "a lamp on a desk at night"}


def test_missing_key_is_401_with_challenge(client: TestClient) -> None:
    response = client.post("/v1/search", json=SEARCH)
    error = assert_error(response, 401, "unauthorized")
    assert "X-API-Key" in error["message"]
    assert response.headers["www-authenticate"] == "APIKey"


def test_unknown_key_is_401(client: TestClient) -> None:
    assert_error(client.post("/v1/search", json=SEARCH, headers={"X-API-Key": "not-a-key-" * 3}), 401, "unauthorized")
    assert_error(client.get("/v1/stats", headers={"X-API-Key": ""}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"),
    [
        ("POST", "/v1/scenes", {"scenes": [SCENE]}, "write"),
        ("DELETE", "/v1/scenes/scn-0002", None, "write"),
        ("PUT", "/v1/consents/persona-ava", {"scopes": ["search"]}, "admin"),
        ("POST", "/v1/consents/persona-ava/revoke", None, "admin"),
    ],
)
def test_read_key_cannot_write(client: TestClient, method: str, path: str, body: object, needed: str) -> None:
    error = assert_error(client.request(method, path, json=body, headers=READ), 403, "forbidden")
    assert f"'{needed}'" in error["message"]


def test_write_key_cannot_change_consent(client: TestClient) -> None:
    response = client.put("/v1/consents/persona-ava", json={"scopes": ["search"]}, headers=WRITE)
    assert_error(response, 403, "forbidden")
    assert_error(client.post("/v1/consents/persona-ava/revoke", headers=WRITE), 403, "forbidden")


def test_scopes_nest(client: TestClient) -> None:
    for headers in (READ, WRITE, ADMIN):
        assert client.post("/v1/search", json=SEARCH, headers=headers).status_code == 200
        assert client.get("/v1/stats", headers=headers).status_code == 200


def test_auth_runs_before_validation(client: TestClient) -> None:
    """An unauthenticated caller learns nothing about the request shape."""
    assert_error(client.post("/v1/search", json={"bogus": 1}), 401, "unauthorized")


def test_public_endpoints(client: TestClient) -> None:
    assert client.get("/v1/health").json()["status"] == "ok"
    assert client.get("/metrics").status_code == 200
    assert client.get("/").status_code == 200


def test_write_key_can_write(writer: TestClient) -> None:
    response = writer.post("/v1/scenes", json={"scenes": [SCENE]}, headers=WRITE)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == ["scn-auth-1"]
    assert writer.put("/v1/consents/persona-zed", json={"scopes": ["search"]}, headers=ADMIN).status_code == 200


def test_keyring_compares_every_key_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        same: bool = real(a, b)
        return same

    monkeypatch.setattr(hmac, "compare_digest", counting)
    ring = KeyRing({READ_KEY: ["read"], WRITE_KEY: ["write"], ADMIN_KEY: ["admin"]})
    for key, expected in ((READ_KEY, {"read"}), (ADMIN_KEY, {"read", "write", "admin"}), ("nope" * 5, None)):
        calls.clear()
        assert ring.scopes_for(key) == (frozenset(expected) if expected else None)
        assert len(calls) == 3  # no early exit on a match
    assert ring.scopes_for(None) is None and ring.scopes_for("") is None


def test_no_keys_refuses_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL_INTENT_API_KEYS", raising=False)
    with pytest.raises(ValidationError, match="no API keys configured"):
        Settings(db=tmp_path)
    assert Settings(db=tmp_path, insecure_local=True).insecure_local
    with pytest.raises(ValidationError, match="loopback"):
        Settings(db=tmp_path, insecure_local=True, host="0.0.0.0")


@pytest.mark.parametrize("keys", [{"changethis": ["read"]}, {"short": ["read"]}, {"a-long-enough-key-123": []}])
def test_weak_keys_are_refused(tmp_path: Path, keys: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        Settings(db=tmp_path, api_keys=keys)  # type: ignore[arg-type]


def test_keys_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUAL_INTENT_API_KEYS", json.dumps({READ_KEY: ["read"]}))
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({ADMIN_KEY: ["admin"]}))
    settings = Settings(db=tmp_path, api_keys_file=keys_file)
    assert settings.all_keys() == {READ_KEY: ["read"], ADMIN_KEY: ["admin"]}
    keys_file.write_text(json.dumps({ADMIN_KEY: ["root"]}))
    with pytest.raises(ValidationError, match="must map each key"):
        Settings(db=tmp_path, api_keys_file=keys_file)


def test_keys_never_leak(client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/search", json=SEARCH, headers=READ)
        client.post("/v1/scenes", json={"scenes": [SCENE]}, headers=READ)
        unknown = client.get("/v1/stats", headers={"X-API-Key": "wrong-key-but-long-enough"})
    assert READ_KEY not in caplog.text and "wrong-key-but-long-enough" not in caplog.text + unknown.text
    settings = Settings(db=tmp_path, api_keys={READ_KEY: ["read"]})
    assert READ_KEY not in repr(settings) and READ_KEY not in str(settings)
    with pytest.raises(ValidationError) as caught:
        Settings(db=tmp_path, api_keys={"short-secret": ["read"]})
    assert "short-secret" not in caught.value.errors()[0]["msg"]


def test_insecure_local_grants_everything(index_copy: Path, app_factory: Callable[..., TestClient]) -> None:
    open_client = app_factory(index_copy, api_keys={}, insecure_local=True)
    assert open_client.post("/v1/search", json=SEARCH).status_code == 200
    assert open_client.put("/v1/consents/persona-zed", json={"scopes": ["search"]}).status_code == 200


def test_configured_keys_win_over_insecure_flag(index_copy: Path, app_factory: Callable[..., TestClient]) -> None:
    keyed = app_factory(index_copy, insecure_local=True)
    assert_error(keyed.post("/v1/search", json=SEARCH), 401, "unauthorized")


def test_serve_refuses_without_keys(fixture_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL_INTENT_API_KEYS", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--db", str(fixture_index)])
    assert result.exit_code != 0
    assert "no API keys configured" in result.output
    monkeypatch.setenv("VISUAL_INTENT_API_KEYS", json.dumps({"tiny": ["read"]}))
    result = CliRunner().invoke(cli_app, ["serve", "--db", str(fixture_index)])
    assert result.exit_code != 0 and "tiny" not in result.output.replace("--", "")
