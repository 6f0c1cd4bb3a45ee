"""Property-based run of the OpenAPI spec (schemathesis, in-process over ASGI): no 5xx, responses match it.

Runs on a private copy of the fixture index with an admin key, so generated writes (scene batches, deletes,
consent changes) really happen. Derandomized and bounded per operation to keep the suite fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from indexer.encoders import SentenceTransformerEncoder
from search.engine import Engine
from tests.api.api_support import ADMIN, make_settings

READS_EXAMPLES = 25
WRITES_EXAMPLES = 15
WRITE_OPERATIONS = {"POST /v1/scenes", "DELETE /v1/scenes/{scene_id}", "PUT /v1/consents/{persona_id}"}
WRITE_OPERATIONS.add("POST /v1/consents/{persona_id}/revoke")


# The spec comes from an app that is never started (no index needed at collection time); the cases are sent
# in-process to a second app over a real index, built by the `api_app` fixture.
BASE_URL = "http://testserver"
SPEC_APP = create_app(make_settings(Path("spec-only")))
schema = schemathesis.openapi.from_dict(SPEC_APP.openapi())
HYPOTHESIS: dict[str, Any] = {
    "derandomize": True,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "database": None,
}


@pytest.fixture(scope="module")
def api_app(
    fixture_index: Path, tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder
) -> FastAPI:
    db = tmp_path_factory.mktemp("schemathesis") / "index"
    shutil.copytree(fixture_index, db)
    return create_app(make_settings(db), Engine.open(db, text=text_encoder))


def _beyond_the_schema(case: Any) -> bool:
    """Cases a schema-valid request may rightly fail for reasons no schema states: whether uploaded bytes are an
    image (and the index has a visual channel), whether a form field holds a valid request as JSON text, cross-field
    rules (recommend examples are disjoint, created_from is not after created_to), and a strict batch whose
    records break the catalog contract (records are free-form objects in the spec so that each bad one is
    reported, not the whole request)."""
    label = case.operation.label
    body = case.body if isinstance(case.body, dict) else {}
    strict_batch = label == "POST /v1/scenes" and body.get("strict") is True
    ids = [{str(i) for i in v} if isinstance(v := body.get(name), list) else set() for name in ("positive", "negative")]
    overlap = label == "POST /v1/recommend" and bool(ids[0] & ids[1])
    filters = body.get("filters") if isinstance(body.get("filters"), dict) else {}
    date_range = bool(filters.get("created_from") and filters.get("created_to"))  # may be backwards
    uploads = label in ("POST /v1/search/image", "POST /v1/recommend/image")
    return uploads or strict_batch or overlap or date_range


def _check(case: Any, app: FastAPI) -> None:
    # The spec was loaded without an app; point this case (and the probes some checks send) at the real one.
    case.operation.app = app
    case.operation.schema.app = app
    response = case.call(base_url=BASE_URL, headers=ADMIN)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    skip = [positive_data_acceptance] if _beyond_the_schema(case) else []
    transport = {"base_url": BASE_URL, "headers": ADMIN}
    case.validate_response(response, headers=ADMIN, transport_kwargs=transport, excluded_checks=skip)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}


@schema.exclude(name=sorted(WRITE_OPERATIONS)).parametrize()
@settings(max_examples=READS_EXAMPLES, **HYPOTHESIS)
def test_read_operations_follow_the_spec(case: Any, api_app: FastAPI) -> None:
    _check(case, api_app)


@schema.include(name=sorted(WRITE_OPERATIONS)).parametrize()
@settings(max_examples=WRITES_EXAMPLES, **HYPOTHESIS)
def test_write_operations_follow_the_spec(case: Any, api_app: FastAPI) -> None:
    _check(case, api_app)
