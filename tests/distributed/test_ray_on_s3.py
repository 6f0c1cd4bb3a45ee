"""The distributed path end to end: the fixtures indexed with `--engine ray` on a local Ray (2 CPUs) into a
local S3-compatible server (moto on loopback), served by two stateless replicas (two service instances, each
with its own engine on the same prefix): every replica ranks exactly as the local-folder index does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions
from search.engine import PRESETS, Engine
from tests.api.api_support import CATALOG, FIXTURES, READ, make_settings
from tests.distributed.conftest import S3Server

QUERIES = [json.loads(line) for line in (CATALOG / "queries.jsonl").read_text(encoding="utf-8").splitlines()][:8]


def test_ray_ingest_into_s3_serves_what_the_local_folder_serves(
    s3_server: S3Server, local_ray: Any, local_index: Path, text_encoder: SentenceTransformerEncoder
) -> None:
    from indexer import ray_ingest

    location = s3_server.location("ray-fixture")
    options = IndexOptions(db=location, use_clip=False, media_root=FIXTURES, progress=False, chunk_size=64)
    files = (CATALOG / "scenes.jsonl", CATALOG / "ads.jsonl", CATALOG / "consents.jsonl")
    report = ray_ingest.index_catalog(
        options, ray_ingest.RayOptions(encode_actors=1), *files, encoders=Encoders(text_encoder, None, None)
    )
    assert (report.scenes, report.errors) == (202, [])
    local = Engine.open(local_index, text=text_encoder)
    replicas = [Engine.open(location, text=text_encoder) for _ in range(2)]
    settings = make_settings(location.uri, storage_options=location.storage_options)
    for engine in replicas:
        with TestClient(create_app(settings, engine)) as client:
            for preset in ("dense", "full+collapse"):
                for query in QUERIES:
                    body = {"query": query["text"], "sku": query.get("sku"), "k": 10, "variant": preset}
                    got = client.post("/v1/search", json=body, headers=READ)
                    assert got.status_code == 200, got.text
                    want = local.search(query["text"], sku=query.get("sku"), k=10, options=PRESETS[preset])
                    ids = [s["scene_id"] for s in got.json()["scenes"]]
                    assert ids and ids == [s.scene_id for s in want.scenes], (preset, query["query_id"])
