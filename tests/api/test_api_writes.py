"""Writes through the API: batch upsert with per-record errors, delete, lineage, consent revocation, limits,
and what concurrent searches see while a batch lands."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from indexer import changelog
from indexer.pipeline import put_consents
from indexer.schema import Consent
from indexer.store import Store
from search.publisher import GAP_GRACE_S
from tests.api.api_support import ADMIN, CATALOG, FIXTURES, READ, WRITE, assert_error


def _catalog(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CATALOG / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _ids(client: TestClient, **body: Any) -> list[str]:
    body = {"k": 100, "collapse": False, **body}
    response = client.post("/v1/search", json=body, headers=READ)
    assert response.status_code == 200, response.text
    return [hit["scene_id"] for hit in response.json()["scenes"]]


def _scene(scene_id: str, **fields: Any) -> dict[str, Any]:
    return {"scene_id": scene_id, "prompt": f"a quokka mascot holding a thermos, take {scene_id}", **fields}


def test_batch_upsert_reports_each_bad_record(writer: TestClient) -> None:
    batch = [
        _scene("api-ok-1", tone=["playful"], creator_id="creator-api"),
        {"scene_id": "api-bad-1"},  # no prompt
        _scene("api-gap-2", parent_id="scn-missing"),  # a lineage gap: kept
        _scene("api-bad-3", media=["../../../../etc/passwd"]),
        _scene("api-bad-4", media=["nope.png"]),
        _scene("api-ok-1"),  # duplicate within the batch
        _scene("bad id with spaces"),
        _scene("api-ok-2", parent_id="api-ok-1"),
    ]
    response = writer.post("/v1/scenes", json={"scenes": batch}, headers=WRITE)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["accepted"] == ["api-ok-1", "api-gap-2", "api-ok-2"]
    assert data["lineage_gaps"] == {"api-gap-2": "scn-missing"}
    rejected = {(e["line"], e["field"]) for e in data["rejected"]}
    assert rejected == {
        (2, "prompt"),
        (4, "media.0"),
        (5, "media.0"),
        (6, "scene_id"),
        (7, "scene_id"),
    }
    reasons = {e["line"]: e["reason"] for e in data["rejected"]}
    assert "escapes" in reasons[4] and "does not exist" in reasons[5] and "duplicate" in reasons[6]
    assert_error(writer.get("/v1/scenes/api-bad-3", headers=READ), 404, "not_found")
    assert writer.get("/v1/scenes/api-ok-1", headers=READ).status_code == 200
    lineage = writer.get("/v1/scenes/api-ok-2/lineage", headers=READ).json()
    assert lineage["root"] == "api-ok-1" and [a["scene_id"] for a in lineage["ancestors"]] == ["api-ok-1"]
    assert "api-ok-1" in _ids(writer, query="quokka mascot thermos")


def test_strict_batch_writes_nothing(writer: TestClient) -> None:
    before = writer.get("/v1/stats", headers=READ).json()
    batch = [_scene("api-strict-1"), {"scene_id": "api-strict-2", "prompt": ""}]
    response = writer.post("/v1/scenes", json={"scenes": batch, "strict": True}, headers=WRITE)
    error = assert_error(response, 422, "invalid_records")
    assert error["details"] == [
        {"field": "prompt", "reason": error["details"][0]["reason"], "line": 2, "record_id": "api-strict-2"}
    ]
    assert_error(writer.get("/v1/scenes/api-strict-1", headers=READ), 404, "not_found")
    assert writer.get("/v1/stats", headers=READ).json()["index_versions"] == before["index_versions"]


def test_media_inside_the_index_folder_gets_shots_and_thumbnails(writer: TestClient, index_copy: Path) -> None:
    (index_copy / "uploads").mkdir()
    source = sorted((FIXTURES / "media").glob("*.png"))[0]
    shutil.copy(source, index_copy / "uploads" / "quokka.png")
    response = writer.post(
        "/v1/scenes", json={"scenes": [_scene("api-media-1", media=["uploads/quokka.png"])]}, headers=WRITE
    )
    assert response.json()["accepted"] == ["api-media-1"], response.text
    scene = writer.get("/v1/scenes/api-media-1", headers=READ).json()
    assert len(scene["shots"]) == 1 and scene["eligible"]["search"]
    image = writer.get(scene["shots"][0]["thumbnail_url"], headers=READ)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"


def test_delete_scene(writer: TestClient) -> None:
    family = _families()
    root, chain = next((r, c) for r, c in family.items() if len(c) >= 2)
    child = chain[0]
    assert writer.get(f"/v1/scenes/{root}", headers=READ).status_code == 200
    response = writer.delete(f"/v1/scenes/{root}", headers=WRITE)
    assert response.status_code == 200 and response.json()["deleted"] is True
    assert_error(writer.get(f"/v1/scenes/{root}", headers=READ), 404, "not_found")
    assert_error(writer.delete(f"/v1/scenes/{root}", headers=WRITE), 404, "not_found")
    assert root not in _ids(writer, query="scene", variant="dense")
    orphan = writer.get(f"/v1/scenes/{child}/lineage", headers=READ).json()
    assert orphan["ancestors"] == [] and orphan["root"] == child


def _families() -> dict[str, list[str]]:
    """Root -> direct children, from the catalog."""
    children: dict[str, list[str]] = {}
    for scene in _catalog("scenes.jsonl"):
        if scene.get("parent_id"):
            children.setdefault(scene["parent_id"], []).append(scene["scene_id"])
    return children


def test_lineage_of_a_deep_chain(client: TestClient) -> None:
    parents = {s["scene_id"]: s.get("parent_id") for s in _catalog("scenes.jsonl")}

    def chain(sid: str) -> list[str]:
        out = []
        while parents.get(sid):
            sid = parents[sid]  # type: ignore[assignment]
            out.append(sid)
        return out

    deepest = max(parents, key=lambda sid: len(chain(sid)))
    expected = chain(deepest)
    assert len(expected) >= 2
    data = client.get(f"/v1/scenes/{deepest}/lineage", headers=READ).json()
    assert [a["scene_id"] for a in data["ancestors"]] == expected
    assert [a["depth"] for a in data["ancestors"]] == list(range(1, len(expected) + 1))
    assert data["root"] == expected[-1]
    from_root = client.get(f"/v1/scenes/{expected[-1]}/lineage", headers=READ).json()
    assert deepest in {d["scene_id"] for d in from_root["descendants"]}
    assert from_root["ancestors"] == []


def test_lineage_hides_scenes_not_eligible_for_search(writer: TestClient) -> None:
    body = {
        "scenes": [
            {"scene_id": "lin-1", "prompt": "a parka on a glacier at noon"},
            {"scene_id": "lin-2", "parent_id": "lin-1", "prompt": "the parka at dusk", "cameos": ["persona-eli"]},
            {"scene_id": "lin-3", "parent_id": "lin-2", "prompt": "the parka at night"},
        ]
    }
    assert writer.post("/v1/scenes", json=body, headers=WRITE).json()["rejected"] == []
    seen = writer.get("/v1/scenes/lin-3/lineage", headers=READ).json()
    assert [a["scene_id"] for a in seen["ancestors"]] == ["lin-1"] and seen["root"] == "lin-1"  # lin-2 skipped
    assert [d["scene_id"] for d in writer.get("/v1/scenes/lin-1/lineage", headers=READ).json()["descendants"]] == [
        "lin-3"
    ]
    assert_error(writer.get("/v1/scenes/lin-2/lineage", headers=READ), 404, "not_found")
    admin = writer.get("/v1/scenes/lin-3/lineage", headers=ADMIN).json()
    assert [(a["scene_id"], a["eligible"]) for a in admin["ancestors"]] == [("lin-2", False), ("lin-1", True)]


def _persona_with_ad() -> tuple[str, dict[str, Any], list[str]]:
    """A persona eligible for ads now, an ad whose creatives show it, and the scenes it appears in."""
    now = datetime.now(timezone.utc)
    ok = {
        c["persona_id"]
        for c in _catalog("consents.jsonl")
        if "ads" in c["scopes"]
        and not c.get("revoked_at")
        and (not c.get("expires_at") or datetime.fromisoformat(c["expires_at"].replace("Z", "+00:00")) > now)
    }
    scenes = {s["scene_id"]: s for s in _catalog("scenes.jsonl")}
    for ad in _catalog("ads.jsonl"):
        cameos = {p for sid in ad.get("creative_scene_ids", []) for p in scenes[sid].get("cameos", [])}
        if cameos and cameos <= ok:
            persona = sorted(cameos)[0]
            shown = [sid for sid, s in scenes.items() if persona in s.get("cameos", [])]
            return persona, ad, shown
    raise AssertionError("the fixture catalog has no ad whose creatives show a consenting persona")


def test_revocation_applies_to_the_very_next_search_and_ads(writer: TestClient) -> None:
    persona, ad, shown = _persona_with_ad()
    ad_query = {"query": f"{ad['headline']} {ad.get('description', '')}"[:400], "sku": ad["skus"][0], "k": 50}
    scene_query = {"query": "scene", "variant": "dense"}

    def ads() -> list[str]:
        response = writer.post("/v1/ads/match", json=ad_query, headers=READ)
        return [a["ad_id"] for a in response.json()["ads"]]

    assert ad["ad_id"] in ads()
    assert set(shown) & set(_ids(writer, **scene_query))
    response = writer.post(f"/v1/consents/{persona}/revoke", headers=ADMIN)
    assert response.status_code == 200 and response.json()["revoked_at"] is not None
    assert not set(shown) & set(_ids(writer, **scene_query))
    assert ad["ad_id"] not in ads()
    assert ad["ad_id"] not in [a["ad_id"] for a in writer.post("/v1/search", json=ad_query, headers=READ).json()["ads"]]
    assert_error(writer.get(f"/v1/scenes/{shown[0]}", headers=READ), 404, "not_found")  # hidden from readers now
    assert writer.get(f"/v1/scenes/{shown[0]}", headers=ADMIN).json()["eligible"] == {
        "search": False,
        "ads": False,
        "remix": False,
    }
    granted = writer.put(f"/v1/consents/{persona}", json={"scopes": ["search", "ads"]}, headers=ADMIN)
    assert granted.status_code == 200 and granted.json()["revoked_at"] is None
    assert ad["ad_id"] in ads()


def test_a_retried_batch_after_an_unlogged_commit_is_read_with_its_min_version(
    index_copy: Path, app_factory: Callable[..., TestClient]
) -> None:
    """Another replica committed the batch and died before its log entry: this replica's serving snapshot
    holds that commit back for a grace period, and the retry here finds the batch already stored (nothing to
    write). Its response must still report the committed versions, so that a search passing them as
    `min_version` waits through the gap instead of being served a snapshot without the batch."""
    retrying = app_factory(index_copy, version_wait_s=GAP_GRACE_S + 1)  # the default waits as long as the grace
    batch = {"scenes": [_scene("api-after-gap")]}
    manifest = (index_copy / "manifest.json").read_bytes()
    assert app_factory(index_copy).post("/v1/scenes", json=batch, headers=WRITE).status_code == 200
    # as if that replica died after its commit: neither its log entry nor its manifest were written
    changelog.table(Store.open(index_copy)).delete("true")
    (index_copy / "manifest.json").write_bytes(manifest)
    retried = retrying.post("/v1/scenes", json=batch, headers=WRITE)
    assert retried.status_code == 200, retried.text
    assert retried.json()["index_versions"] == Store.open(index_copy).versions()
    assert "api-after-gap" in _ids(retrying, query="quokka mascot thermos", min_version=retried.json()["index_version"])


def test_consent_validation(writer: TestClient) -> None:
    assert_error(writer.put("/v1/consents/persona-x", json={"scopes": ["sell"]}, headers=ADMIN), 422, "invalid_request")
    assert_error(writer.put("/v1/consents/bad persona", json={"scopes": []}, headers=ADMIN), 422, "invalid_request")
    expires = writer.put(
        "/v1/consents/persona-x", json={"scopes": ["search"], "expires_at": "2031-01-01T00:00:00Z"}, headers=ADMIN
    )
    assert expires.json()["expires_at"].startswith("2031-01-01")


def test_batch_and_body_limits(index_copy: Path, app_factory: Callable[..., TestClient]) -> None:
    small = app_factory(index_copy, max_batch_records=2, max_body_bytes=4096)
    three = {"scenes": [_scene(f"api-lim-{i}") for i in range(3)]}
    error = assert_error(small.post("/v1/scenes", json=three, headers=WRITE), 413, "payload_too_large")
    assert "at most 2" in error["message"]
    big = {"scenes": [_scene("api-lim-9", caption="x" * 5000)]}
    assert_error(small.post("/v1/scenes", json=big, headers=WRITE), 413, "payload_too_large")

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    chunked = small.post("/v1/search", content=chunks(), headers={**READ, "Content-Type": "application/json"})
    assert_error(chunked, 413, "payload_too_large")


def test_searches_never_see_half_a_batch(writer: TestClient) -> None:
    """Readers hammer a filter that matches only the batch while it lands: they see all of it or none."""
    creator = "creator-atomic"
    batch = [_scene(f"api-atomic-{i}", creator_id=creator) for i in range(6)]
    seen: list[int] = []
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            response = writer.post(
                "/v1/search",
                json={"query": "quokka", "k": 100, "collapse": False, "filters": {"creators": [creator]}},
                headers=READ,
            )
            if response.status_code != 200:
                errors.append(response.text)
            else:
                seen.append(len(response.json()["scenes"]))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert writer.post("/v1/scenes", json={"scenes": batch}, headers=WRITE).status_code == 200
        deadline = time.monotonic() + 10
        while 6 not in seen and time.monotonic() < deadline:  # let the readers see the batch land
            time.sleep(0.02)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert errors == [] and 0 in seen and 6 in seen
    assert set(seen) <= {0, 6}, sorted(set(seen))
    assert len(_ids(writer, query="quokka", filters={"creators": [creator]})) == 6


def test_external_index_writes_are_picked_up(index_copy: Path, app_factory: Callable[..., TestClient]) -> None:
    """A write by another process (here: another Store on the same folder) reaches searches via the poller."""
    polled = app_factory(index_copy, refresh_interval_s=0.1)
    persona, _, shown = _persona_with_ad()
    scene_query = {"query": "scene", "variant": "dense"}
    assert set(shown) & set(_ids(polled, **scene_query))
    revoked = Consent(persona_id=persona, scopes=["search", "ads"], revoked_at=datetime.now(timezone.utc))
    put_consents(Store.open(index_copy), [revoked])
    deadline = time.monotonic() + 10
    while set(shown) & set(_ids(polled, **scene_query)):
        assert time.monotonic() < deadline, "the external revocation was not picked up"
        time.sleep(0.1)
    metrics = polled.get("/metrics").text
    assert "visual_intent_snapshot_refreshes_total 1.0" in metrics


def test_read_your_writes_across_two_services(index_copy: Path, app_factory: Callable[..., TestClient]) -> None:
    """Two services on one folder (as two replicas would be): a write through A returns its index version; a
    search on B with that `min_version` sees it, without B reloading the index (the write is applied as a delta)."""
    a = app_factory(index_copy, refresh_interval_s=0)
    b = app_factory(index_copy, refresh_interval_s=0)  # no poller: only min_version makes B catch up
    written = a.post("/v1/scenes", json={"scenes": [_scene("scn-rw-1")]}, headers=WRITE)
    assert written.status_code == 200, written.text
    version = written.json()["index_version"]
    assert version == sum(written.json()["index_versions"].values())
    query = {"query": "quokka mascot holding a thermos", "variant": "fts", "k": 5}
    assert "scn-rw-1" not in _ids(b, **query)  # B has not looked yet
    found = _ids(b, **query, min_version=version)
    assert found[0] == "scn-rw-1"  # found by full text before any index rebuild
    stats = b.get("/v1/stats", headers=READ).json()
    assert stats["index_version"] >= version
    late = b.post("/v1/search", json={**query, "min_version": version + 1000}, headers=READ)
    assert_error(late, 409, "version_not_reached")
