"""The trust layer over HTTP: disclosure and credential state on results, trust filters, credential-only ads,
credit and family metrics on lineage, trending families with consent applied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from tests.api.api_support import ADMIN, READ
from tests.trust_support import make_signer, trust_catalog


@pytest.fixture(scope="module")
def trust_index(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    root = tmp_path_factory.mktemp("api-trust")
    files = trust_catalog(root / "catalog", make_signer())
    options = IndexOptions(db=root / "index", progress=False, use_clip=False, c2pa_trust_anchors=files["anchors"])
    index_catalog(options, files["scenes"], files["ads"], files["consents"], Encoders(text_encoder, None, None))
    return root / "index"


@pytest.fixture
def trusted(trust_index: Path, app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory(trust_index)


def _search(client: TestClient, **body: object) -> dict[str, dict[str, object]]:
    response = client.post(
        "/v1/search", json={"query": "neon city poster", "k": 20, "collapse": False, **body}, headers=READ
    )
    assert response.status_code == 200, response.text
    return {hit["scene_id"]: hit for hit in response.json()["scenes"]}


def test_results_carry_disclosure_provenance_and_credit(trusted: TestClient) -> None:
    hits = _search(trusted)
    cameo = hits["t-cameo"]
    assert cameo["disclosure"]["required"] is True and cameo["disclosure"]["label"].startswith("AI-generated")
    assert cameo["credit"] == ["creator-t-mp4", "creator-t-cameo"]
    assert hits["t-mov"]["provenance"]["verified"]["c2pa_state"] == "Trusted"
    assert hits["t-mov"]["provenance"]["mismatches"] == ["generator_mismatch"]
    assert hits["t-tampered"]["provenance"]["verified"]["binding_ok"] is False


def test_trust_filters_and_credential_requirement(trusted: TestClient) -> None:
    assert set(_search(trusted, filters={"c2pa_states": ["Invalid"]})) == {"t-tampered"}
    assert set(_search(trusted, filters={"disclosure_ok": False})) == {"t-tampered", "t-unsigned", "t-text"}
    only = _search(trusted, require_credentials=True, use="ads")
    assert only and all(h["provenance"]["verified"]["c2pa_state"] in ("Trusted", "Valid") for h in only.values())
    bad = trusted.post("/v1/search", json={"query": "x", "filters": {"c2pa_states": ["Maybe"]}}, headers=READ)
    assert bad.status_code == 422


def test_ads_match_can_require_credentials(trusted: TestClient) -> None:
    def ads(require: bool) -> dict[str, dict[str, object]]:
        body = {"query": "blue studio poster", "require_credentials": require}
        response = trusted.post("/v1/ads/match", json=body, headers=READ)
        assert response.status_code == 200, response.text
        return {ad["ad_id"]: ad for ad in response.json()["ads"]}

    free = ads(False)
    assert free["ad-poster"]["disclosure"]["creatives"] == {"t-unsigned": "none"}
    assert "ad-poster" not in ads(True)


def test_lineage_gains_credit_and_family_metrics(trusted: TestClient) -> None:
    body = trusted.get("/v1/scenes/t-cameo/lineage", headers=READ).json()
    assert body["credit"] == ["creator-t-mp4", "creator-t-cameo"]
    assert body["family"]["family_id"] == "t-mp4" and body["family"]["size"] == 2


def test_families_hide_ineligible_scenes_from_non_admin_keys(client: TestClient) -> None:
    read = client.get("/v1/families", params={"sort": "size", "limit": 500, "min_size": 1}, headers=READ).json()
    admin = client.get("/v1/families", params={"sort": "size", "limit": 500, "min_size": 1}, headers=ADMIN).json()
    assert sum(f["size"] for f in read["families"]) < sum(f["size"] for f in admin["families"])
    for family in read["families"]:
        scene = client.get(f"/v1/scenes/{family['family_id']}", headers=READ)
        assert scene.status_code == 200  # every listed root is visible to this key
    trending = client.get("/v1/families", params={"sort": "velocity", "limit": 5}, headers=READ).json()
    velocities = [f["velocity_per_day"] for f in trending["families"]]
    assert velocities == sorted(velocities, reverse=True) and all(f["size"] >= 2 for f in trending["families"])
    assert client.get("/v1/families", params={"sort": "likes"}, headers=READ).status_code == 422


def test_scene_read_shows_per_file_credentials(trusted: TestClient) -> None:
    body = trusted.get("/v1/scenes/t-tampered", headers=READ).json()
    assert body["provenance"]["verified"]["c2pa_state"] == "Invalid"
    [media] = body["media_credentials"]
    assert media["path"] == "tampered.mp4" and media["binding_ok"] is False  # no server path
    assert "assertion.bmffHash.mismatch" in media["codes"]
