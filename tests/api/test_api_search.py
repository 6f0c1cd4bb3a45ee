"""POST /v1/search and /v1/ads/match on the fixture index: results, frame, ads, filters, injection attempts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.api_support import CATALOG, READ, assert_error

INJECTIONS = [
    "' OR 1=1 --",
    "x'); DROP TABLE scenes; --",
    'scene_id = "scn-0001" OR TRUE',
    "%' OR ''='",
    "\\' OR 1=1 /*",
]


def _catalog(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CATALOG / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _search(client: TestClient, **body: Any) -> Any:
    response = client.post("/v1/search", json=body, headers=READ)
    assert response.status_code == 200, response.text
    return response.json()


def test_scenario_query_returns_scenes_shots_ads_and_frame(client: TestClient) -> None:
    data = _search(client, query="what would my living room look like with this sofa", sku="SKU-SOF-001", k=5)
    assert data["frame"]["product"]["sku"] == "SKU-SOF-001"
    assert data["frame"]["setting"]["value"] == "living_room"
    assert data["frame"]["setting"]["confidence"] == 1.0  # named by the lexicon, not guessed
    assert 1 <= len(data["scenes"]) <= 5
    top = data["scenes"][0]
    assert "SKU-SOF-001" in top["skus"] and top["matched_slots"].get("sku") == "SKU-SOF-001"
    assert top["explanation"] is None  # only with explain
    assert data["ads"] and all(ad["relevance"] >= 0.3 for ad in data["ads"])
    assert data["index_versions"]["scenes"] >= 1 and data["took_ms"] > 0


def test_best_shot_has_timestamps_and_thumbnail(client: TestClient) -> None:
    with_media = {s["scene_id"] for s in _catalog("scenes.jsonl") if s.get("media")}
    data = _search(client, query="a scene", k=100, collapse=False, variant="dense", ads_k=0)
    shots = [hit["best_shot"] for hit in data["scenes"] if hit["scene_id"] in with_media]
    assert shots and all(s is not None for s in shots)
    for shot in shots:
        assert shot["start_s"] is not None and shot["end_s"] is not None and shot["start_s"] <= shot["end_s"]
        assert shot["thumbnail_url"].startswith("/v1/thumbnails/")
    assert all(hit["best_shot"] is None for hit in data["scenes"] if hit["scene_id"] not in with_media)


def test_explain_adds_channel_ranks(client: TestClient) -> None:
    data = _search(client, query="sneakers on a rainy neon street, energetic", k=3, explain=True)
    why = data["scenes"][0]["explanation"]
    assert set(why["ranks"]) <= {"dense", "fts", "clip", "slots"} and why["ranks"]
    assert why["summary"]


def test_negation_lands_in_frame(client: TestClient) -> None:
    data = _search(client, query="leather sofa in a living room, no people", k=5)
    assert any(n["slot"] == "people" for n in data["frame"]["negations"])


def test_collapse_and_variants(client: TestClient) -> None:
    collapsed = _search(client, query="sofa", k=100)
    flat = _search(client, query="sofa", k=100, collapse=False)
    shown = {hit["scene_id"]: hit for hit in collapsed["scenes"]}
    for hit in collapsed["scenes"]:  # a folded near-duplicate is listed under its representative, not beside it
        assert not set(hit["variants"]) & set(shown)
    assert len(flat["scenes"]) >= len(collapsed["scenes"])
    assert _search(client, query="sofa", variant="fts", k=3)["channels"] == ["fts"]


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        ({"tones": ["cozy"]}, lambda hit: "cozy" in hit["tones"]),
        ({"settings": ["beach", "alpine"]}, lambda hit: hit["setting"] in ("beach", "alpine")),
        ({"times_of_day": ["night"]}, lambda hit: hit["time_of_day"] == "night"),
        ({"categories": ["footwear"]}, lambda hit: "footwear" in hit["categories"]),
    ],
)
def test_structured_filters_constrain_results(client: TestClient, filters: dict[str, Any], check: Any) -> None:
    data = _search(client, query="a product scene", k=100, collapse=False, filters=filters)
    assert data["scenes"] and all(check(hit) for hit in data["scenes"])


def test_creator_generator_brand_and_date_filters(client: TestClient) -> None:
    scenes = _catalog("scenes.jsonl")
    creator = scenes[1]["creator_id"]
    generator = scenes[1]["provenance"]["generator"]
    by_creator = _search(client, query="scene", k=100, collapse=False, filters={"creators": [creator]})
    expected = {s["scene_id"] for s in scenes if s.get("creator_id") == creator}
    assert by_creator["scenes"] and set(scene_ids_of(by_creator)) <= expected
    assert _search(client, query="scene", filters={"generators": [generator]})["scenes"]
    assert _search(client, query="sofa", filters={"brands": ["Casa Lumen"]})["scenes"]
    future = _search(client, query="sofa", filters={"created_from": "2100-01-01T00:00:00Z"})
    assert future["scenes"] == []


def scene_ids_of(data: dict[str, Any]) -> list[str]:
    return [hit["scene_id"] for hit in data["scenes"]]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_in_free_text_filters_matches_nothing(client: TestClient, attack: str) -> None:
    """Creators, generators and brands are compared as values in a numpy mask: an attack is just a name."""
    for field in ("creators", "generators", "brands"):
        data = _search(client, query="sofa", k=10, filters={field: [attack]})
        assert data["scenes"] == []


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_in_query_text_is_only_text(client: TestClient, attack: str) -> None:
    data = _search(client, query=f"sofa {attack}", k=5)
    assert len(data["scenes"]) <= 5
    assert client.post("/v1/ads/match", json={"query": attack, "variant": "keyword"}, headers=READ).status_code == 200


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_in_vocabulary_filters_and_ids_is_rejected(client: TestClient, attack: str) -> None:
    for body in (
        {"query": "sofa", "filters": {"tones": [attack]}},
        {"query": "sofa", "filters": {"settings": [attack]}},
        {"query": "sofa", "sku": attack},
    ):
        error = assert_error(client.post("/v1/search", json=body, headers=READ), 422, "invalid_request")
        assert error["details"] and error["details"][0]["field"].startswith("body.")
    assert client.get("/v1/scenes/" + attack.replace("/", "%2F"), headers=READ).status_code in (404, 422)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "x" * 501},
        {"query": "sofa", "k": 0},
        {"query": "sofa", "k": 101},
        {"query": "sofa", "variant": "bm25"},
        {"query": "sofa", "use": "remix"},
        {"query": "sofa", "unknown": 1},
        {"query": "sofa", "filters": {"tones": ["gloomy"]}},
        {"query": "sofa", "filters": {"mood": ["cozy"]}},
        {"query": "sofa", "filters": {"created_from": "2026-01-02T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"}},
        {"query": "sofa", "mmr_lambda": 2},
    ],
)
def test_invalid_search_requests_are_422(client: TestClient, body: dict[str, Any]) -> None:
    error = assert_error(client.post("/v1/search", json=body, headers=READ), 422, "invalid_request")
    assert error["details"] and all(d["field"] and d["reason"] for d in error["details"])


def test_unknown_vocabulary_value_lists_choices(client: TestClient) -> None:
    body = {"query": "sofa", "filters": {"tones": ["gloomy"]}}
    error = assert_error(client.post("/v1/search", json=body, headers=READ), 422, "invalid_request")
    assert "cozy" in error["details"][0]["reason"]


def test_ineligible_cameos_never_returned(client: TestClient) -> None:
    labels = [json.loads(line) for line in (CATALOG.parent / "truth" / "scene_labels.jsonl").open()]
    hidden = {s["scene_id"] for s in labels if not s["eligible"]["search"]}
    assert hidden
    data = _search(client, query="scene", k=100, collapse=False, variant="dense")
    assert not hidden & set(scene_ids_of(data))


@pytest.mark.parametrize("variant", ["keyword", "dense", "hybrid", "intent"])
def test_ads_match_variants(client: TestClient, variant: str) -> None:
    response = client.post(
        "/v1/ads/match", json={"query": "waterproof jacket for a rainy hike", "variant": variant, "k": 3}, headers=READ
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["variant"] == variant and 1 <= len(data["ads"]) <= 3
    assert all(ad["ad_id"].startswith("ad-") for ad in data["ads"])
    assert (data["frame"] is not None) == (variant == "intent")


def test_unknown_sku_is_a_note_not_an_error(client: TestClient) -> None:
    data = _search(client, query="this jacket at night", sku="SKU-NOPE-404")
    assert any("unknown sku" in note for note in data["frame"]["notes"])
