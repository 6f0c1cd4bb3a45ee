"""One error shape for every failure, no stack traces, typed errors mapped once; metrics; the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.routes import scenes as scene_routes
from indexer.errors import EncoderUnavailableError, IndexMismatchError
from tests.api.api_support import READ, WRITE, assert_error


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here", headers=READ), 404, "not_found")
    assert_error(client.get("/v1/search", headers=READ), 405, "method_not_allowed")
    assert_error(client.get("/static/missing.js"), 404, "not_found")


def test_malformed_bodies(client: TestClient) -> None:
    broken = client.post("/v1/search", content=b'{"query": ', headers={**READ, "Content-Type": "application/json"})
    assert_error(broken, 422, "invalid_request")
    text = client.post("/v1/search", content=b"query=sofa", headers={**READ, "Content-Type": "text/plain"})
    assert_error(text, 422, "invalid_request")
    assert_error(client.post("/v1/search", json=["sofa"], headers=READ), 422, "invalid_request")


def test_unexpected_error_is_500_without_trace(
    index_copy: Path, app_factory: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = app_factory(index_copy, raise_server_exceptions=False)
    engine = broken.app.state.service.engine  # type: ignore[attr-defined]

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail in /srv/private/path")

    monkeypatch.setattr(engine, "search", explode)
    response = broken.post("/v1/search", json={"query": "sofa"}, headers=READ)
    error = assert_error(response, 500, "internal_error")
    assert "reference" in error["message"]
    assert "secret" not in response.text and "Traceback" not in response.text and "/srv" not in response.text


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (IndexMismatchError("index needs CLIP 'x', got 'y'"), 409, "index_mismatch"),
        (EncoderUnavailableError("weights missing"), 503, "encoder_unavailable"),
    ],
)
def test_typed_errors_map_to_status(
    writer: TestClient, monkeypatch: pytest.MonkeyPatch, exc: Exception, status: int, code: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(scene_routes, "index_catalog", fail)
    response = writer.post("/v1/scenes", json={"scenes": [{"scene_id": "s-1", "prompt": "p"}]}, headers=WRITE)
    error = assert_error(response, status, code)
    assert error["message"] == str(exc)


def test_security_headers(client: TestClient) -> None:
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get("/v1/health")
    assert api.headers["cache-control"] == "no-store" and "server" not in api.headers


def test_page_is_server_rendered_with_vocabulary(client: TestClient) -> None:
    html = client.get("/").text
    assert '<option value="golden_hour">golden hour</option>' in html and "{{" not in html
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_metrics_use_route_templates(client: TestClient) -> None:
    client.get("/v1/scenes/scn-0002", headers=READ)
    client.get("/v1/scenes/scn-0003", headers=READ)
    client.get("/v1/does-not-exist", headers=READ)
    text = client.get("/metrics").text
    assert 'visual_intent_requests_total{method="GET",route="/v1/scenes/{scene_id}",status="200"}' in text
    assert "scn-0002" not in text and "does-not-exist" not in text
    assert 'route="(unmatched)",status="404"' in text
    assert "visual_intent_request_seconds_bucket" in text
    scenes = client.get("/v1/stats", headers=READ).json()["scenes"]
    assert f"visual_intent_scenes {float(scenes)}" in text


def test_metrics_registry_is_per_app(client: TestClient, writer: TestClient) -> None:
    writer.get("/v1/health")
    assert 'route="/v1/health"' in writer.get("/metrics").text
    assert client.app.state.service.metrics.registry is not writer.app.state.service.metrics.registry  # type: ignore[attr-defined]


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("post", "/v1/search"),
        ("post", "/v1/search/image"),
        ("post", "/v1/ads/match"),
        ("post", "/v1/scenes"),
        ("get", "/v1/scenes/{scene_id}"),
        ("delete", "/v1/scenes/{scene_id}"),
        ("get", "/v1/scenes/{scene_id}/lineage"),
        ("get", "/v1/families"),
        ("put", "/v1/consents/{persona_id}"),
        ("post", "/v1/consents/{persona_id}/revoke"),
        ("get", "/v1/health"),
        ("get", "/v1/stats"),
        ("get", "/metrics"),
        ("get", "/v1/thumbnails/{path}"),
        ("post", "/v1/recommend"),
        ("post", "/v1/recommend/image"),
        ("get", "/v1/scenes/{scene_id}/shots/{index}/media"),
    }
    assert {(m, p) for p, ops in paths.items() for m in ops} == expected
    assert spec["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["APIKeyHeader"]["description"],
    }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["SearchRequest"]["examples"]
    for path, ops in paths.items():
        for method, op in ops.items():
            if path.startswith("/v1/") and path != "/v1/health":
                assert {"401", "403"} <= set(op["responses"]), (method, path)
                assert op["security"] == [{"APIKeyHeader": []}]
