"""Thumbnails come only from <index>/thumbs/, only for scenes eligible now; traversal attempts are 404s.
Reference-image search: size limits, image validation, and the visual channel (tiny random-weight CLIP)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from indexer.encoders import ClipModel, SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.store import ClipInfo
from search.engine import Engine
from tests.api.api_support import ADMIN, CATALOG, FIXTURES, READ, assert_error, make_settings

TRAVERSALS = [
    "../manifest.json",
    "..%2Fmanifest.json",
    "%2e%2e/%2e%2e/etc/passwd",
    "scn-0003/../../manifest.json",
    "scn-0003/..%2F..%2Ftables",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cmanifest.json",
    "scn-0003/%00.jpg",
    "x" * 300 + "/0-0.jpg",
]


def _labels() -> list[dict[str, Any]]:
    path = CATALOG.parent / "truth" / "scene_labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _thumb_of(client: TestClient, scene_id: str) -> str:
    shots = client.get(f"/v1/scenes/{scene_id}", headers=READ).json()["shots"]
    assert shots, f"{scene_id} has no shots"
    url: str = shots[0]["thumbnail_url"]
    return url


def _media_scenes(eligible: bool) -> list[str]:
    with_media = {
        json.loads(line)["scene_id"]
        for line in (CATALOG / "scenes.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("media")
    }
    return [s["scene_id"] for s in _labels() if s["scene_id"] in with_media and s["eligible"]["search"] == eligible]


def test_thumbnail_of_an_eligible_scene(client: TestClient) -> None:
    url = _thumb_of(client, _media_scenes(eligible=True)[0])
    response = client.get(url, headers=READ)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size[0] > 0
    assert_error(client.get(url), 401, "unauthorized")


@pytest.mark.parametrize("attempt", TRAVERSALS)
def test_traversal_attempts_are_404(client: TestClient, attempt: str) -> None:
    response = client.get("/v1/thumbnails/" + attempt, headers=READ)
    assert_error(response, 404, "not_found")


def test_links_and_other_files_under_thumbs_are_404(writer: TestClient, index_copy: Path) -> None:
    scene_id = _media_scenes(eligible=True)[0]
    folder = index_copy / "thumbs" / scene_id
    (folder / "escape.jpg").symlink_to(index_copy / "manifest.json")
    (folder / "notes.txt").write_text("not an image")
    (index_copy / "thumbs" / "stray.jpg").write_bytes(b"\xff\xd8")
    for name in (f"{scene_id}/escape.jpg", f"{scene_id}/notes.txt", "stray.jpg", scene_id):
        assert_error(writer.get(f"/v1/thumbnails/{name}", headers=READ), 404, "not_found")


def test_thumbnails_follow_consent(writer: TestClient) -> None:
    hidden = _media_scenes(eligible=False)
    assert hidden, "the fixtures have media scenes whose cameo consent does not cover search"
    assert_error(writer.get(f"/v1/scenes/{hidden[0]}", headers=READ), 404, "not_found")  # hidden from readers
    scene = writer.get(f"/v1/scenes/{hidden[0]}", headers=ADMIN).json()  # admins manage consent: they see it
    assert scene["eligible"]["search"] is False
    assert_error(writer.get(scene["shots"][0]["thumbnail_url"], headers=READ), 404, "not_found")
    scene_id = next(
        s for s in _media_scenes(eligible=True) if writer.get(f"/v1/scenes/{s}", headers=READ).json()["cameos"]
    )
    url = _thumb_of(writer, scene_id)
    assert writer.get(url, headers=READ).status_code == 200
    for persona in writer.get(f"/v1/scenes/{scene_id}", headers=READ).json()["cameos"]:
        assert writer.post(f"/v1/consents/{persona}/revoke", headers=ADMIN).status_code == 200
    assert_error(writer.get(url, headers=READ), 404, "not_found")


def _png(color: tuple[int, int, int] = (200, 120, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def _upload(client: TestClient, data: bytes, **fields: str) -> Any:
    files = {"image": ("ref.png", data, "image/png")}
    return client.post("/v1/search/image", files=files, data=fields, headers=READ)


def test_image_search_without_visual_channel_is_422(client: TestClient) -> None:
    error = assert_error(_upload(client, _png(), query="sofa"), 422, "no_visual_channel")
    assert "no visual channel" in error["message"]


def test_image_upload_limits(index_copy: Path, app_factory: Any) -> None:
    small = app_factory(index_copy, max_image_bytes=2048, max_body_bytes=64 * 1024)
    noise = Image.frombytes("RGB", (64, 64), random.Random(0).randbytes(64 * 64 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    assert len(out.getvalue()) > 2048
    assert_error(_upload(small, out.getvalue()), 413, "payload_too_large")
    assert_error(_upload(small, b"\x89PNG" + b"\0" * 70_000), 413, "payload_too_large")
    assert_error(small.post("/v1/search/image", data={"query": "x"}, headers=READ), 422, "invalid_request")


@pytest.fixture(scope="module")
def clip_client(
    tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder, tiny_clip: ClipModel
) -> Iterator[TestClient]:
    """A small index with shot vectors from a tiny random-weight CLIP: identical pixels give identical vectors."""
    lines = [json.loads(line) for line in (CATALOG / "scenes.jsonl").read_text(encoding="utf-8").splitlines() if line]
    subset = [
        {k: v for k, v in s.items() if k != "parent_id"} for s in lines if s.get("media") and not s.get("cameos")
    ][:10]
    for scene in subset:  # media paths are relative to fixtures/catalog; make them absolute (still under fixtures/)
        scene["media"] = [str((CATALOG / m).resolve()) for m in scene["media"]]
    folder = tmp_path_factory.mktemp("clip-api")
    scenes_file = folder / "scenes.jsonl"
    scenes_file.write_text("".join(json.dumps(s) + "\n" for s in subset))
    info = ClipInfo(tiny_clip.spec.arch, tiny_clip.spec.pretrained, tiny_clip.id, tiny_clip.dim)
    db = folder / "index"
    options = IndexOptions(db=db, media_root=FIXTURES, progress=False)
    report = index_catalog(options, scenes_file, encoders=Encoders(text_encoder, tiny_clip, info))
    assert report.errors == [] and report.shots >= 10
    engine = Engine.open(db, text=text_encoder, clip=tiny_clip)
    with TestClient(create_app(make_settings(db), engine)) as test_client:
        yield test_client


def test_reference_image_finds_its_scene(clip_client: TestClient) -> None:
    stats = clip_client.get("/v1/stats", headers=READ).json()
    assert stats["visual_channel"] is True
    scene_id = clip_client.post("/v1/search", json={"query": "scene", "k": 1}, headers=READ).json()["scenes"][0]
    scene_id = scene_id["scene_id"]
    media_file = FIXTURES / "media" / f"{scene_id}.png"
    response = _upload(clip_client, media_file.read_bytes(), k="10")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["reference_image"] is True and data["channels"] == ["clip"]
    best = {hit["scene_id"]: hit["best_shot"]["similarity"] for hit in data["scenes"]}
    assert best[scene_id] == pytest.approx(1.0, abs=1e-3)
    assert data["scenes"][0]["best_shot"]["similarity"] == pytest.approx(1.0, abs=1e-3)
    with_text = _upload(clip_client, media_file.read_bytes(), query="a product scene", explain="true")
    assert "clip" in with_text.json()["channels"] and "dense" in with_text.json()["channels"]


def test_reference_image_validation(clip_client: TestClient) -> None:
    assert_error(_upload(clip_client, b"definitely not an image"), 422, "invalid_image")
    assert_error(_upload(clip_client, b""), 422, "invalid_image")
    assert_error(_upload(clip_client, _png(), filters='{"tones": ["gloomy"]}'), 422, "invalid_request")
    assert_error(_upload(clip_client, _png(), filters="{not json"), 422, "invalid_request")
    assert _upload(clip_client, _png(), filters='{"tones": ["cozy"]}').status_code == 200


def test_recommend_with_a_reference_image(clip_client: TestClient, client: TestClient) -> None:
    """Examples plus an image: the image's own scene comes first with a best shot that matches it exactly."""
    found = clip_client.post("/v1/search", json={"query": "scene", "k": 3}, headers=READ).json()["scenes"]
    positive, pictured = found[0]["scene_id"], found[1]["scene_id"]
    picture = (FIXTURES / "media" / f"{pictured}.png").read_bytes()
    request = json.dumps({"positive": [positive], "k": 5, "collapse": False})
    files = {"image": ("ref.png", picture, "image/png")}
    response = clip_client.post("/v1/recommend/image", files=files, data={"request": request}, headers=READ)
    assert response.status_code == 200, response.text
    data = response.json()
    assert "clip" in data["channels"] and data["positive"] == [positive]
    hits = {hit["scene_id"]: hit for hit in data["scenes"]}
    assert positive not in hits and pictured in hits
    assert hits[pictured]["best_shot"]["similarity"] > max(
        hit["best_shot"]["similarity"] for sid, hit in hits.items() if sid != pictured and hit["best_shot"]
    )
    bad = clip_client.post("/v1/recommend/image", files=files, data={"request": "{}"}, headers=READ)
    assert_error(bad, 422, "invalid_request")
    assert_error(
        client.post("/v1/recommend/image", files=files, data={"request": request}, headers=READ),
        422,
        "no_visual_channel",
    )
