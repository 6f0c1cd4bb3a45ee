"""The ONNX Runtime backend of the text encoder: a real export of the packaged MiniLM, compared with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.encoders import SentenceTransformerEncoder, load_sentence_transformer, load_text_encoder
from indexer.errors import EncoderUnavailableError, IndexMismatchError
from indexer.onnx_text import BACKENDS, OnnxTextEncoder
from indexer.pipeline import IndexOptions, index_catalog
from search.engine import Engine

TEXTS = [
    "A hiker in a red down parka on snow-dusted peaks under a starry sky",
    "sofa",
    "Sneakers splashing through a rainy neon street at night, energetic handheld camera, reflections everywhere",
    "a cozy evening by the fire",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export for the module, in a private cache folder (the user's cache is never touched)."""
    folder = tmp_path_factory.mktemp("vi-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VISUAL_INTENT_CACHE", str(folder))
        OnnxTextEncoder("onnx-int8:all-MiniLM-L6-v2")  # exports fp32, then quantises
    return folder


@pytest.fixture
def cached(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VISUAL_INTENT_CACHE", str(onnx_cache))
    return onnx_cache


def test_fp32_graph_gives_the_torch_vectors(cached: Path, text_encoder: SentenceTransformerEncoder) -> None:
    onnx = load_text_encoder("onnx:all-MiniLM-L6-v2")
    assert (onnx.id, onnx.dim) == ("onnx:all-MiniLM-L6-v2", text_encoder.dim)
    got, want = onnx.encode(TEXTS), text_encoder.encode(TEXTS)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx.encode([]).shape == (0, text_encoder.dim)


def test_int8_graph_is_close_and_keeps_the_ranking(cached: Path, text_encoder: SentenceTransformerEncoder) -> None:
    int8 = load_text_encoder("onnx-int8:all-MiniLM-L6-v2")
    got, want = int8.encode(TEXTS), text_encoder.encode(TEXTS)
    assert np.all(np.sum(got * want, axis=1) > 0.9)
    query = ["a mountain hike in winter at night"]
    assert np.argmax(got @ int8.encode(query)[0]) == np.argmax(want @ text_encoder.encode(query)[0]) == 0


def test_rows_come_back_in_input_order_across_length_sorted_batches(cached: Path) -> None:
    onnx = OnnxTextEncoder("onnx:all-MiniLM-L6-v2", batch_size=2)
    together = onnx.encode(TEXTS)
    one_by_one = np.vstack([onnx.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_export_is_cached_by_weights_digest(cached: Path) -> None:
    graphs = sorted(cached.glob("onnx/all-MiniLM-L6-v2-*/*.onnx"))
    assert [g.name for g in graphs] == sorted(BACKENDS.values())
    stamps = [g.stat().st_mtime_ns for g in graphs]
    load_text_encoder("onnx:all-MiniLM-L6-v2")
    assert [g.stat().st_mtime_ns for g in graphs] == stamps  # reused, not exported again


def test_a_model_that_is_not_mean_pooled_is_refused(tmp_path: Path, cached: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    minilm = load_sentence_transformer("all-MiniLM-L6-v2", device="cpu")
    cls_model = SentenceTransformer(modules=[minilm[0], Pooling(minilm.get_embedding_dimension(), "cls")])
    cls_model.save(str(tmp_path / "cls-model"))
    with pytest.raises(EncoderUnavailableError, match="mean-pooled"):
        OnnxTextEncoder(f"onnx:{tmp_path / 'cls-model'}")
    with pytest.raises(EncoderUnavailableError, match="onnx-int8:<name>"):
        OnnxTextEncoder("onnx-fp16:all-MiniLM-L6-v2")


def test_the_backend_is_part_of_the_index_identity(cached: Path, catalog: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "idx"
    index_catalog(IndexOptions(db=db, use_clip=False, text_model="onnx:all-MiniLM-L6-v2"), catalog["scenes"])
    engine = Engine.open(db, use_clip=False)
    assert engine.text.id == "onnx:all-MiniLM-L6-v2"  # queries are encoded by the backend that built the index
    assert engine.search("red parka on a snowy mountain at night", k=1).scenes[0].scene_id == "s1"
    with pytest.raises(IndexMismatchError, match="onnx:all-MiniLM-L6-v2"):
        index_catalog(IndexOptions(db=db, use_clip=False, text_model="st:all-MiniLM-L6-v2"), catalog["scenes"])
