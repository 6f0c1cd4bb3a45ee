"""POST /v1/recommend on the fixture index: examples never returned, negatives, filters, consent (an example the
key may not see is a 404 like an unknown id), validation, and the OpenAPI entry; GET of a shot's media."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.api.api_support import ADMIN, CATALOG, READ, assert_error, scene_ids


def _labels() -> dict[str, dict[str, Any]]:
    lines = (CATALOG.parent / "truth" / "scene_labels.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["scene_id"]: r for r in map(json.loads, filter(None, lines))}


def _eligible(use: str = "search") -> list[str]:
    return sorted(sid for sid, r in _labels().items() if r["eligible"][use])


def _recommend(client: TestClient, headers: dict[str, str] = READ, **body: Any) -> Any:
    return client.post("/v1/recommend", json=body, headers=headers)


def test_recommend_returns_scenes_like_the_examples(client: TestClient) -> None:
    positive = _eligible()[:2]
    response = _recommend(client, positive=positive, k=8, explain=True)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["strategy"] == "average_vector" and data["positive"] == positive and data["negative"] == []
    found = scene_ids(response)
    assert len(found) == 8 and not set(found) & set(positive)
    assert len({hit["family_id"] for hit in data["scenes"]}) == len(found)  # collapsed by default
    assert all(hit["explanation"]["ranks"].get("dense") for hit in data["scenes"])
    assert "ads" in data and data["took_ms"] > 0


def test_negatives_leave_the_results(client: TestClient) -> None:
    positive = _eligible()[5]
    plain = scene_ids(_recommend(client, positive=[positive], k=10, collapse=False))
    negative = plain[:2]
    steered = scene_ids(_recommend(client, positive=[positive], negative=negative, k=10, collapse=False))
    assert not set(steered) & {positive, *negative}
    assert steered != plain[2:]


def test_filters_and_consent_mask(client: TestClient) -> None:
    positive = _eligible()[0]
    night = _recommend(client, positive=[positive], k=20, filters={"times_of_day": ["night"]}).json()
    assert night["scenes"] and all(hit["time_of_day"] == "night" for hit in night["scenes"])
    for use in ("search", "ads"):
        found = scene_ids(_recommend(client, positive=[positive], k=100, collapse=False, use=use))
        assert found and set(found) <= set(_eligible(use))


def test_ineligible_examples_are_not_found_for_non_admin_keys(client: TestClient) -> None:
    hidden = sorted(set(_labels()) - set(_eligible()))[0]
    visible = _eligible()[0]
    for body in ({"positive": [hidden]}, {"positive": [visible], "negative": [hidden]}):
        error = assert_error(_recommend(client, **body), 404, "not_found")
        assert error["message"] == f"no scene '{hidden}' in the index"
    unknown = assert_error(_recommend(client, positive=["scn-9999"]), 404, "not_found")
    assert unknown["message"] == "no scene 'scn-9999' in the index"  # the same words: existence does not leak
    admin = _recommend(client, ADMIN, positive=[hidden], k=20, collapse=False)
    assert admin.status_code == 200 and set(scene_ids(admin)) <= set(_eligible())


def test_recommend_validation(client: TestClient) -> None:
    visible = _eligible()[0]
    for body in (
        {"positive": []},
        {"positive": [visible], "negative": [visible]},
        {"positive": [f"scn-{i:04d}" for i in range(21)]},
        {"positive": ["' OR 1=1 --"]},
        {"negative": [visible]},
    ):
        assert_error(_recommend(client, **body), 422, "invalid_request")
    assert_error(client.post("/v1/recommend", json={"positive": [visible]}), 401, "unauthorized")


def test_openapi_documents_recommend_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/recommend"]["post"]
    assert "average_vector" in operation["description"] and "404" in operation["responses"]
    assert spec["components"]["schemas"]["RecommendRequest"]["examples"]
    assert "strategy" in spec["components"]["schemas"]["RecommendPublic"]["properties"]


def test_shot_media_is_served_for_indexed_shots_only(client: TestClient) -> None:
    clip_scene = "scn-0003"  # its media is fixtures/clips/sunset_beach_2shots.webm
    assert _labels()[clip_scene]["eligible"]["search"]
    shots = client.get(f"/v1/scenes/{clip_scene}", headers=READ).json()["shots"]
    assert len(shots) >= 2
    whole = client.get(f"/v1/scenes/{clip_scene}/shots/{shots[1]['index']}/media", headers=READ)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/webm"
    part = client.get(f"/v1/scenes/{clip_scene}/shots/0/media", headers={**READ, "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content == whole.content[:100]
    hidden = "scn-0011"  # has a keyframe image, and a cameo whose consent does not cover search
    assert not _labels()[hidden]["eligible"]["search"]
    assert client.get(f"/v1/scenes/{hidden}/shots/0/media", headers=ADMIN).status_code == 404  # not even admin
    for path in (f"{clip_scene}/shots/99", f"{hidden}/shots/0", "scn-9999/shots/0"):
        assert_error(client.get(f"/v1/scenes/{path}/media", headers=READ), 404, "not_found")
    assert_error(client.get(f"/v1/scenes/{clip_scene}/shots/0/media"), 401, "unauthorized")
    assert client.get("/v1/scenes/..%2F..%2Fetc/shots/0/media", headers=READ).status_code in (404, 422)
