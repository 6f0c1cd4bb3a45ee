"""Indexing into real LanceDB + FAISS: contents, upserts, encoders recorded, CLIP path, ANN versioning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer import ann
from indexer.errors import CatalogError, IndexMismatchError
from indexer.pipeline import Encoders, IndexOptions, index_catalog, load_encoders
from indexer.schema import ADS, CONSENTS, SCENES, SCHEMA_VERSION, SHOTS, SceneCol
from indexer.store import Store
from tests.helpers import write_jsonl


def test_index_stores_scenes_context_lineage_and_vectors(
    catalog: dict[str, Path], options: IndexOptions, text_only: Encoders
) -> None:
    report = index_catalog(options, catalog["scenes"], catalog["ads"], catalog["consents"], encoders=text_only)
    assert (report.scenes, report.ads, report.consents, report.errors) == (8, 4, 3, [])
    store = Store.open(options.db)
    assert store.count(SCENES) == 8 and store.count(ADS) == 4 and store.count(CONSENTS) == 3
    rows = {
        r["scene_id"]: r
        for r in store.columns(
            SCENES, [SceneCol.ID, SceneCol.SETTING, SceneCol.TIME, SceneCol.TONES, SceneCol.INFERRED, SceneCol.PARENT]
        ).to_pylist()
    }
    # s1 gives no setting/time: the lexicon infers them from "snow-dusted peaks under a starry sky"
    assert (rows["s1"]["setting"], rows["s1"]["time_of_day"]) == ("alpine", "night")
    assert set(rows["s1"]["inferred"]) >= {"setting", "time_of_day"}
    assert rows["s1"]["tones"] == ["adventurous"]  # given, kept
    assert rows["s4"]["tones"] == ["cozy"] and "tone" in rows["s4"]["inferred"]
    assert rows["s3"]["parent_id"] == "s2"
    manifest = json.loads((options.db / "manifest.json").read_text())
    assert manifest["text_encoder"] == "st:all-MiniLM-L6-v2" and manifest["text_dim"] == 384
    assert manifest["schema_version"] == SCHEMA_VERSION


def test_reindexing_same_id_replaces_it(catalog: dict[str, Path], options: IndexOptions, text_only: Encoders) -> None:
    index_catalog(options, catalog["scenes"], encoders=text_only)
    path = write_jsonl(catalog["root"] / "v2.jsonl", [{"scene_id": "s7", "prompt": "Sneakers in a gym, harsh light"}])
    index_catalog(options, path, encoders=text_only)
    store = Store.open(options.db)
    assert store.count(SCENES) == 8
    assert store.columns(SCENES, [SceneCol.PROMPT], where="scene_id = 's7'").to_pylist() == [
        {"prompt": "Sneakers in a gym, harsh light"}
    ]


def test_ann_layer_tracks_lancedb_version_and_rebuilds_when_stale(
    catalog: dict[str, Path], options: IndexOptions, text_only: Encoders
) -> None:
    index_catalog(options, catalog["scenes"], encoders=text_only)
    store = Store.open(options.db)
    saved = ann.load(options.db / ann.ANN_DIR, ann.SCENE_TEXT)
    assert saved is not None and saved.version == store.table(SCENES).version and len(saved) == 8
    store.delete(SCENES, ["s7"])  # a write that bypasses the pipeline makes the saved layer stale
    fresh = ann.load_or_build(store, ann.SCENE_TEXT)
    assert fresh is not None and fresh.version == store.table(SCENES).version and "s7" not in fresh.keys
    # FAISS agrees with exact search over the same vectors
    vectors = fresh.index.reconstruct_n(0, len(fresh))
    assert np.array_equal(fresh.search(vectors[:3], 3)[1], ann.exact_search(vectors, vectors[:3], 3))


def test_hnsw_recall_against_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    hnsw = ann.build(vectors, [str(i) for i in range(3000)], 1, kind="hnsw")
    ann.save(hnsw, tmp_path, "t")
    loaded = ann.load(tmp_path, "t")
    assert loaded is not None and loaded.params["kind"] == "hnsw"
    recall = ann.recall_at_k(loaded.search(queries, 10)[1], ann.exact_search(vectors, queries, 10))
    assert recall > 0.9


def test_opening_with_other_text_encoder_is_a_clear_error(
    catalog: dict[str, Path], options: IndexOptions, text_only: Encoders
) -> None:
    index_catalog(options, catalog["scenes"], encoders=text_only)

    class Other:
        id, dim, modality = "st:other-model", 384, "text"

        def encode(self, batch: list[str]) -> np.ndarray:
            return np.zeros((len(batch), 384), np.float32)

    with pytest.raises(IndexMismatchError, match="built with text encoder 'st:all-MiniLM-L6-v2', not 'st:other-model'"):
        index_catalog(options, catalog["scenes"], encoders=Encoders(Other(), None, None))


def test_clip_checkpoint_indexes_image_shots(
    catalog: dict[str, Path], options: IndexOptions, with_clip: Encoders
) -> None:
    report = index_catalog(options, catalog["scenes"], encoders=with_clip)
    assert report.shots == 2 and report.clip_status == "loaded"
    store = Store.open(options.db)
    assert store.manifest.clip is not None and store.manifest.clip.id == with_clip.clip.id  # type: ignore[union-attr]
    shots = store.columns(SHOTS, ["scene_id", "thumb_path", "clip_vec"]).to_pylist()
    assert sorted(s["scene_id"] for s in shots) == ["s1", "s4"]
    for shot in shots:
        assert (options.db / shot["thumb_path"]).is_file() and len(shot["clip_vec"]) == with_clip.clip.dim  # type: ignore[union-attr]
    assert report.ann[ann.SHOT_CLIP]["rows"] == 2


def test_clip_loader_reads_a_local_checkpoint(
    tiny_clip_files: tuple[Path, Path], options: IndexOptions, text_only: Encoders
) -> None:
    config, checkpoint = tiny_clip_files
    enc = load_encoders(IndexOptions(db=options.db, clip_arch=str(config), clip_pretrained=str(checkpoint)))
    assert enc.clip is not None and enc.clip.id.startswith("clip:tiny-test-clip/sha256-")
    assert enc.clip_info is not None and enc.clip_info.status == "loaded"


def test_missing_clip_weights_are_recorded_and_text_channels_still_index(
    catalog: dict[str, Path], options: IndexOptions
) -> None:
    enc = load_encoders(IndexOptions(db=options.db, clip_pretrained="laion2b_s34b_b79k"))  # not in any cache here
    assert enc.clip is None and enc.clip_info is not None
    assert "not in the local cache" in enc.clip_info.status
    report = index_catalog(options, catalog["scenes"], encoders=enc)
    assert report.scenes == 8 and report.shots == 2  # shots keep timestamps/thumbnails, no vectors
    manifest = json.loads((options.db / "manifest.json").read_text())
    assert manifest["clip"]["id"] is None and "not in the local cache" in manifest["clip"]["status"]


def test_rebuild_swaps_in_a_fresh_index_and_a_failed_one_leaves_the_old(
    catalog: dict[str, Path], options: IndexOptions, text_only: Encoders
) -> None:
    index_catalog(options, catalog["scenes"], encoders=text_only)
    only = write_jsonl(catalog["root"] / "only.jsonl", [{"scene_id": "r1", "prompt": "a lamp in a studio"}])
    rebuild = IndexOptions(db=options.db, rebuild=True, progress=False)
    index_catalog(rebuild, only, encoders=text_only)
    assert Store.open(options.db).ids(SCENES) == ["r1"]
    assert not options.db.with_name(options.db.name + ".rebuild").exists()
    broken = write_jsonl(catalog["root"] / "broken.jsonl", [{"scene_id": "r2"}])
    with pytest.raises(CatalogError, match="invalid record"):
        index_catalog(
            IndexOptions(db=options.db, rebuild=True, strict=True, progress=False), broken, encoders=text_only
        )
    assert Store.open(options.db).ids(SCENES) == ["r1"]
