"""The index on S3 (a real moto server on loopback): the same search results as a local folder, the side
objects (manifest, FAISS layers, thumbnails) stored as objects, and the conditional-put check."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer import ann
from indexer.encoders import SentenceTransformerEncoder
from indexer.errors import IndexNotFoundError, VisualIntentError
from indexer.location import PROBE_DIR, IndexLocation, options_from_env, parse_storage_options
from indexer.store import MANIFEST, read_manifest
from search.engine import PRESETS, Engine
from tests.api.api_support import CATALOG, READ, make_settings
from tests.distributed.conftest import BUCKET, S3Server

QUERIES = [json.loads(line) for line in (CATALOG / "queries.jsonl").read_text(encoding="utf-8").splitlines()][:6]


@pytest.fixture(scope="module")
def engines(
    s3_index: IndexLocation, local_index: Path, text_encoder: SentenceTransformerEncoder
) -> tuple[Engine, Engine]:
    return Engine.open(s3_index, text=text_encoder), Engine.open(local_index, text=text_encoder)


@pytest.mark.parametrize("preset", ["dense", "fts", "full+collapse"])
def test_search_on_s3_matches_local_folder(engines: tuple[Engine, Engine], preset: str) -> None:
    remote, local = engines
    now = read_manifest(remote.store.location).created_at  # any fixed time: the same for both
    assert remote.snapshot.versions == local.snapshot.versions
    for query in QUERIES:
        args = {"sku": query.get("sku"), "k": 10, "options": PRESETS[preset]}
        got = remote.search(query["text"], now=_time(now), **args)
        want = local.search(query["text"], now=_time(now), **args)
        assert [h.scene_id for h in got.scenes] == [h.scene_id for h in want.scenes], query["query_id"]
        assert [h.scene_id for h in got.scenes]  # the comparison is not vacuous
        assert [a.ad_id for a in got.ads] == [a.ad_id for a in want.ads]


def _time(iso: str) -> object:
    from datetime import datetime

    return datetime.fromisoformat(iso)


def test_side_objects_live_next_to_the_tables(s3_server: S3Server, s3_index: IndexLocation) -> None:
    manifest = s3_index.read_json(MANIFEST)
    assert manifest["table_versions"]["scenes"] >= 1
    meta = s3_index.read_json(f"{ann.ANN_DIR}/{ann.SCENE_TEXT}.json")
    # the FAISS object is named by the version it reflects and written before the meta that names it
    assert meta["index"] == f"{ann.SCENE_TEXT}.v{meta['version']}.faiss"
    assert meta["index"] in s3_index.list(ann.ANN_DIR)
    assert meta["version"] == manifest["table_versions"]["scenes"]
    layer = ann.load_at(s3_index, ann.SCENE_TEXT)
    assert layer is not None and len(layer) == len(meta["keys"])
    thumbs = s3_index.list("thumbs/scn-0003")
    assert thumbs and all(t.endswith(".jpg") for t in thumbs)
    assert not s3_index.list(PROBE_DIR)  # the conditional-put probe cleans up


def test_thumbnail_served_from_s3(s3_index: IndexLocation, local_index: Path, engines: tuple[Engine, Engine]) -> None:
    remote, _ = engines
    name = s3_index.list("thumbs/scn-0003")[0]
    with TestClient(create_app(make_settings(s3_index.uri, storage_options=s3_index.storage_options), remote)) as c:
        got = c.get(f"/v1/thumbnails/scn-0003/{name}", headers=READ)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.content == (local_index / "thumbs" / "scn-0003" / name).read_bytes()
        for bad in ("../manifest.json", "scn-0003/../../manifest.json", "scn-0003/x.txt", "..%2Fmanifest.json"):
            assert c.get(f"/v1/thumbnails/{bad}", headers=READ).status_code == 404


def test_moto_honours_if_none_match(s3_server: S3Server) -> None:
    """The fact the conditional-put check rests on: a second put-if-absent of one key is refused (412)."""
    opts = s3_server.options
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name=opts["region"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.put_object(Bucket=BUCKET, Key="fact/once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.put_object(Bucket=BUCKET, Key="fact/once", Body=b"2", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=BUCKET, Key="fact/once")["Body"].read() == b"1"


def test_unreachable_store_is_a_clear_error(s3_server: S3Server) -> None:
    location = IndexLocation.of(f"s3://no-such-bucket-{BUCKET}/x", s3_server.options)
    with pytest.raises(VisualIntentError, match="cannot write to s3://no-such-bucket"):
        location.require_conditional_put()
    with pytest.raises(IndexNotFoundError, match="missing manifest.json"):
        read_manifest(s3_server.location("nothing-here"))


def test_storage_options_from_env_and_flags() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "k"}
    assert options_from_env(env) == {
        "aws_endpoint": "http://127.0.0.1:9",
        "region": "eu-west-1",
        "aws_access_key_id": "k",
    }
    assert parse_storage_options(["allow_http=true", "region=us-east-1"]) == {
        "allow_http": "true",
        "region": "us-east-1",
    }
    with pytest.raises(VisualIntentError, match="KEY=VALUE"):
        parse_storage_options(["region"])
    location = IndexLocation.of("s3://bucket/prefix/", {"endpoint": "http://x", "aws_region": "r"})
    assert location.uri == "s3://bucket/prefix" and location.storage_options == {
        "aws_endpoint": "http://x",
        "region": "r",
    }
    assert "http://x" not in repr(location)  # options (credentials) stay out of reprs and logs
    assert IndexLocation.of(Path("some/folder")).is_local
    with pytest.raises(VisualIntentError, match="unsupported scheme"):
        IndexLocation.of("ftp://host/index")


def test_small_files_merge_on_object_storage(
    s3_server: S3Server, s3_index: IndexLocation, text_encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    """The live index's file merge (LanceDB `compact_files`) runs on S3, and a reader follows it as a logged
    write: the same base and delta, no reload."""
    from indexer.catalog import Inline
    from indexer.pipeline import Encoders, IndexOptions, index_catalog
    from search import compaction
    from tests.distributed.conftest import copy_index

    location = copy_index(s3_server, s3_index)
    engine = Engine.open(location, text=text_encoder)
    options = IndexOptions(db=location, text_model=text_encoder.id, use_clip=False, progress=False, live=True)
    for i in range(3):
        scene = {"scene_id": f"s3-merge-{i}", "prompt": f"a lighthouse keeper's thermos, take {i}"}
        index_catalog(options, Inline("test", [scene], base=tmp_path), encoders=Encoders(text_encoder, None, None))
        engine.refresh()
    scenes = engine.store.table("scenes")
    before = scenes.stats()["fragment_stats"]["num_fragments"]
    compaction.merge_files(engine.store)
    assert scenes.stats()["fragment_stats"]["num_fragments"] <= before - 2
    assert engine.refresh()
    assert engine.snapshot.delta_rows == 3 and engine.snapshot.versions == engine.store.versions()
    hits = engine.search("lighthouse keeper thermos", k=5, options=PRESETS["fts"]).scenes
    assert {h.scene_id for h in hits} >= {"s3-merge-0", "s3-merge-1", "s3-merge-2"}
