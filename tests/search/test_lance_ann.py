"""The dense channel served from LanceDB's IVF_PQ index (`Engine.open(ann="lance")`) against the FAISS engine on
the same index: real LanceDB, a real IVF_PQ index, the fixture catalog plus generated scenes (PQ trains only
past 256 rows, and the fixture holds 202; below that Lance would scan flat and nothing approximate is tested)."""

from __future__ import annotations

import gc
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer import lance_ann
from indexer.catalog import Inline
from indexer.encoders import Encoder
from indexer.lance_ann import LanceAnn
from indexer.pipeline import Encoders, IndexOptions, delete_scenes, index_catalog
from indexer.schema import SCENES, Consent
from search.engine import PRESETS, Engine
from search.lance_vectors import CACHE_ROWS, LanceVectors
from search.vectors import SegmentedVectors
from tests.api.api_support import index_fixture_catalog

CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "catalog"
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
EXTRA = 420  # generated scenes: 622 rows, so PQ trains and k-means gets 2 partitions (min(sqrt, rows // 256))
# Measured 1.0 here (every query, dense and full+collapse): at 622 rows 48-byte PQ codes rank as exact search
# does; the bound leaves room for k-means' randomness. Recall at scale: bench/bench_lance_ivf.py --engine.
RECALL_BOUND = 0.9
ITEMS = ["jacket", "sofa", "sneakers", "sunglasses", "watch", "backpack", "lamp", "dress", "headphones", "bike"]
PLACES = ["alpine hut", "neon street", "beach", "living room", "forest trail", "rooftop", "desert road", "cafe"]
TIMES = ["at dawn", "at night", "at golden hour", "in the rain", "in the snow", "at noon"]


def _generated() -> list[dict[str, Any]]:
    rng = np.random.default_rng(13)
    return [
        {
            "scene_id": f"gen-{i:04d}",
            "prompt": f"{rng.choice(ITEMS)} {rng.choice(['on', 'in', 'near'])} a {rng.choice(PLACES)} "
            f"{rng.choice(TIMES)}, take {i}",
        }
        for i in range(EXTRA)
    ]


@pytest.fixture(scope="module")
def lance_index(tmp_path_factory: pytest.TempPathFactory, text_encoder: Encoder) -> Path:
    """The fixture catalog plus generated scenes, with the IVF_PQ index built (as `index --ann lance` does)."""
    db = tmp_path_factory.mktemp("lance-ann") / "index"
    index_fixture_catalog(db, text_encoder)
    options = IndexOptions(db=db, use_clip=False, progress=False, media_root=db)
    index_catalog(options, Inline("generated", _generated(), base=db), encoders=Encoders(text_encoder, None, None))
    # a FAISS engine first saves its base at the versions before the IVF_PQ index exists: the lance engine
    # must not pin that version (Lance would scan every vector flat) but load the tables with the index
    Engine.open(db, text=text_encoder, use_clip=False)
    engine = Engine.open(db, text=text_encoder, use_clip=False, ann="lance")  # builds the missing index
    assert lance_ann.vector_index(engine.snapshot.text.base.table) is not None  # type: ignore[union-attr]
    stats = engine.store.table(SCENES).index_stats(lance_ann.vector_index(engine.store.table(SCENES)).name)
    assert stats.index_type == "IVF_PQ" and stats.num_indexed_rows == 202 + EXTRA and stats.num_unindexed_rows == 0
    return db


@pytest.fixture
def db(lance_index: Path, tmp_path: Path) -> Path:
    """A private copy for tests that write."""
    return Path(shutil.copytree(lance_index, tmp_path / "index"))


def _queries() -> list[str]:
    return [json.loads(line)["text"] for line in (CATALOG / "queries.jsonl").read_text().splitlines() if line]


def _top(engine: Engine, text: str, k: int = 10, preset: str = "dense", **kw: Any) -> list[str]:
    return [s.scene_id for s in engine.search(text, k=k, options=PRESETS[preset], now=NOW, **kw).scenes]


def _big_float_arrays(obj: Any, rows: int, seen: set[int], depth: int = 0) -> list[tuple[int, ...]]:
    """Shapes of float arrays with at least `rows` rows reachable from `obj` (fields, dicts, lists)."""
    if id(obj) in seen or depth > 6:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj.shape] if obj.dtype.kind == "f" and obj.ndim == 2 and obj.shape[0] >= rows else []
    if isinstance(obj, dict):
        children: list[Any] = list(obj.values())
    elif isinstance(obj, list | tuple):
        children = list(obj[:50])
    elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        names = list(getattr(obj, "__dict__", {})) + list(getattr(obj, "__slots__", ()))
        children = [getattr(obj, n, None) for n in names]
    else:
        return []
    return [shape for child in children for shape in _big_float_arrays(child, rows, seen, depth + 1)]


def test_lance_dense_matches_faiss_on_the_fixture_queries(lance_index: Path, text_encoder: Encoder) -> None:
    faiss = Engine.open(lance_index, text=text_encoder, use_clip=False)
    lance = Engine.open(lance_index, text=text_encoder, use_clip=False, ann="lance")
    assert isinstance(faiss.snapshot.text, SegmentedVectors) and isinstance(lance.snapshot.text, LanceVectors)
    assert faiss.snapshot.text_ann.params["kind"] == "flat"  # 622 rows: the FAISS engine's dense top-10 is exact
    recalls, full_overlap = [], []
    for query in _queries():
        exact, found = _top(faiss, query), _top(lance, query)
        recalls.append(len(set(exact) & set(found)) / len(exact))
        full = _top(faiss, query, preset="full+collapse")
        full_overlap.append(len(set(full) & set(_top(lance, query, preset="full+collapse"))) / max(1, len(full)))
    assert len(recalls) == 49
    assert float(np.mean(recalls)) >= RECALL_BOUND, recalls
    assert float(np.mean(full_overlap)) >= RECALL_BOUND, full_overlap


def test_scores_come_from_the_ivf_pq_index(lance_index: Path, text_encoder: Encoder) -> None:
    """Every row allowed, so no exact fallback: without refine the scores are PQ estimates (not the exact inner
    products), with refine (the default) Lance re-scores the candidates exactly."""
    pq = Engine.open(lance_index, text=text_encoder, use_clip=False, ann=LanceAnn(refine_factor=None))
    refined = Engine.open(lance_index, text=text_encoder, use_clip=False, ann="lance")
    query = text_encoder.encode(["sneakers on a rainy neon street, energetic"])[0]
    allowed = np.ones(len(pq.snapshot), dtype=bool)
    rows, scores = pq.snapshot.text.search(query, allowed, 10)
    assert len(rows) == 10 and np.abs(scores - pq.snapshot.text_vecs[rows] @ query).max() > 1e-3
    rows, scores = refined.snapshot.text.search(query, allowed, 10)
    np.testing.assert_allclose(scores, refined.snapshot.text_vecs[rows] @ query, atol=1e-5)
    assert list(scores) == sorted(scores, reverse=True)


def test_lance_engine_holds_no_base_vector_matrix(lance_index: Path, text_encoder: Encoder) -> None:
    engine = Engine.open(lance_index, text=text_encoder, use_clip=False, ann="lance")
    snap = engine.snapshot
    assert isinstance(snap.text, LanceVectors) and snap.text.base.version == snap.versions[SCENES]
    assert lance_ann.vector_index(snap.text.base.table) is not None  # the pinned version has the index
    assert _big_float_arrays(snap, snap.base_rows, set()) == []  # no (base rows x dim) matrix anywhere
    # rows' vectors come from Lance at the pinned version, equal to what the table stores
    rows = [0, 5, snap.base_rows - 1]
    stored = engine.store.table(SCENES).take_offsets(rows).select(["text_vec", "_rowoffset"]).to_arrow()
    by_offset = dict(zip(stored.column("_rowoffset").to_pylist(), stored.column("text_vec").to_pylist(), strict=True))
    np.testing.assert_allclose(snap.text_vecs[rows], np.array([by_offset[r] for r in rows]), rtol=1e-6)
    assert len(snap.text.base._cache) <= CACHE_ROWS


def test_lance_engine_follows_writes_deletes_and_consent(db: Path, text_encoder: Encoder) -> None:
    engine = Engine.open(db, text=text_encoder, use_clip=False, ann="lance")
    # a live write lands in the in-memory delta and is found
    prompt = "a purple kayak drifting past glaciers under the aurora"
    options = IndexOptions(db=db, use_clip=False, progress=False, media_root=db, live=True)
    encoders = Encoders(text_encoder, None, None)
    index_catalog(options, Inline("w", [{"scene_id": "new-kayak", "prompt": prompt}], base=db), encoders=encoders)
    assert engine.refresh() and engine.snapshot.delta_rows == 1
    assert _top(engine, prompt)[0] == "new-kayak"
    # a base scene that tops its own prompt disappears once deleted (a tombstone masks the IVF_PQ hit)
    victim = _top(engine, "show me how this jacket looks in the Alps at night")[0]
    victim_query = engine.snapshot.text_vecs[engine.snapshot.row[victim]]
    assert _top(engine, "", text_query=victim_query)[0] == victim
    delete_scenes(engine.store, [victim])
    assert engine.refresh()
    assert victim not in _top(engine, "", k=50, text_query=victim_query)
    # a revoked persona's scenes are withheld, including where the scene's own vector is the query
    snap = engine.snapshot
    fay = [sid for sid in snap.row if "persona-fay" in (snap.columns["cameos"][snap.row[sid]] or [])]
    assert len(fay) == 3
    fay_query = snap.text_vecs[snap.row[fay[0]]]
    assert _top(engine, "", text_query=fay_query)[0] == fay[0]
    engine.put_consents([Consent(persona_id="persona-fay", scopes=["search"], revoked_at=NOW)])
    for scenes in (_top(engine, "", k=50, text_query=fay_query), _top(engine, "", k=50, text_query=fay_query,
                                                                        preset="full+collapse")):  # fmt: skip
        assert not set(fay) & set(scenes)


def test_compaction_folds_the_delta_into_the_lance_base(db: Path, text_encoder: Encoder) -> None:
    engine = Engine.open(db, text=text_encoder, use_clip=False, ann="lance")
    prompt = "a brass telescope on a lighthouse balcony in fog"
    options = IndexOptions(db=db, use_clip=False, progress=False, media_root=db, live=True)
    index_catalog(options, Inline("w", [{"scene_id": "new-scope", "prompt": prompt}], base=db),
                  encoders=Encoders(text_encoder, None, None))  # fmt: skip
    engine.refresh()
    snap = engine.compact()
    assert isinstance(snap.text, LanceVectors) and snap.delta_rows == 0 and snap.base_rows == 203 + EXTRA
    assert not (db / "ann" / "scenes_text.faiss").exists() or _faiss_version(db) < snap.versions[SCENES]
    stats = engine.store.table(SCENES).index_stats(lance_ann.vector_index(engine.store.table(SCENES)).name)
    assert stats.num_unindexed_rows == 0  # optimize folded the new row into the IVF_PQ index
    assert _top(engine, prompt)[0] == "new-scope"
    del engine
    gc.collect()


def _faiss_version(db: Path) -> int:
    return int(json.loads((db / "ann" / "scenes_text.json").read_text())["version"])


def test_index_cli_with_ann_lance_trains_ivf_pq_and_builds_no_faiss_text_layer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from indexer.store import Store
    from tests.helpers import write_jsonl

    scenes = write_jsonl(tmp_path / "scenes.jsonl", _generated())
    db = tmp_path / "index"
    args = ["index", "--db", str(db), "--scenes", str(scenes), "--no-clip", "--quiet", "--text-model", "hash:64"]
    result = CliRunner().invoke(app, [*args, "--ann", "lance"])
    assert result.exit_code == 0, result.output
    table = Store.open(db).table(SCENES)
    stats = table.index_stats(lance_ann.vector_index(table).name)
    assert stats.index_type == "IVF_PQ" and stats.num_indexed_rows == EXTRA
    assert not (db / "ann" / "scenes_text.faiss").exists()  # the FAISS text layer was never built
    assert CliRunner().invoke(app, [*args, "--ann", "hnsw"]).exit_code != 0


def test_service_settings_ann_lance_open_the_lance_engine(lance_index: Path) -> None:
    """`serve --ann lance` (VISUAL_INTENT_ANN=lance): the service opens its own engine on the Lance base."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.api.api_support import READ, make_settings

    app = create_app(make_settings(lance_index, ann="lance", use_clip=False))
    with TestClient(app) as client:
        response = client.post("/v1/search", json={"query": "sneakers on a rainy neon street"}, headers=READ)
        assert response.status_code == 200, response.text
        assert response.json()["scenes"]
        assert isinstance(app.state.service.snapshot.text, LanceVectors)
