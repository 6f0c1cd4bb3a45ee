"""Query encodings: one encoder call per search (frame phrases and search text together), an LRU cache in
front of the real MiniLM, and results identical to encoding in place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.encoders import Modality, SentenceTransformerEncoder
from indexer.errors import IndexMismatchError
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from search.engine import Engine
from search.query_cache import CachedEncoder
from tests.helpers import ADS, CONSENTS, SCENES, write_jsonl

QUERY = "cozy evening with a leather sofa, warm lamps, no people"


class CountingEncoder:
    """The real encoder, with a record of each call (orchestration is what these tests check)."""

    modality: Modality = "text"

    def __init__(self, inner: SentenceTransformerEncoder, model_id: str | None = None):
        self.inner, self.id, self.dim = inner, model_id or inner.id, inner.dim
        self.calls: list[list[str]] = []

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        self.calls.append([str(t) for t in batch])
        return self.inner.encode(batch)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    root = tmp_path_factory.mktemp("queries")
    scenes = [{k: v for k, v in s.items() if k != "media"} for s in SCENES]
    paths = [write_jsonl(root / f"{n}.jsonl", r) for n, r in (("s", scenes), ("a", ADS), ("c", CONSENTS))]
    index_catalog(IndexOptions(db=root / "index", progress=False), *paths, encoders=Encoders(text_encoder, None, None))
    return root / "index"


def test_one_encoder_call_per_search_then_none(index_dir: Path, text_encoder: SentenceTransformerEncoder) -> None:
    engine = Engine.open(index_dir, text=text_encoder)
    engine.search("a red parka on the ridge")  # label vectors of the vocabulary load once, here
    counter = CountingEncoder(text_encoder)
    engine.use_query_encoder(CachedEncoder(counter))
    response = engine.search(QUERY, k=5)
    assert len(counter.calls) == 1
    assert response.frame["search_text"] in counter.calls[0] and len(counter.calls[0]) > 1  # phrases ride along
    engine.search(QUERY, k=5)
    assert len(counter.calls) == 1  # the same query again: all from the cache

    plain = Engine.open(index_dir, text=text_encoder).search(QUERY, k=5)
    assert [h.scene_id for h in response.scenes] == [h.scene_id for h in plain.scenes]
    assert [h.score for h in response.scenes] == pytest.approx([h.score for h in plain.scenes], abs=1e-4)


def test_cache_is_lru_and_counts(text_encoder: SentenceTransformerEncoder) -> None:
    counter = CountingEncoder(text_encoder)
    cache = CachedEncoder(counter, capacity=2)
    first = cache.encode(["alpine night", "rainy street", "alpine night"])
    assert counter.calls == [["alpine night", "rainy street"]]  # duplicates encoded once
    np.testing.assert_allclose(first, text_encoder.encode(["alpine night", "rainy street", "alpine night"]), atol=1e-5)
    cache.encode(["alpine night"])  # a hit: now the most recent
    cache.encode(["beach at dawn"])  # evicts "rainy street", the least recent
    cache.encode(["alpine night", "rainy street"])
    assert counter.calls[-1] == ["rainy street"]
    stats = cache.stats()
    assert (stats.size, stats.capacity, stats.hits, stats.misses) == (2, 2, 2, 5)  # a repeat inside one call misses
    assert stats.hit_rate == pytest.approx(2 / 7)
    returned = cache.encode(["alpine night"])
    returned[0, 0] = 99.0  # a caller scribbling on its copy leaves the cache alone
    assert cache.encode(["alpine night"])[0, 0] != 99.0


def test_query_encoder_must_match_the_index(index_dir: Path, text_encoder: SentenceTransformerEncoder) -> None:
    engine = Engine.open(index_dir, text=text_encoder)
    with pytest.raises(IndexMismatchError):
        engine.use_query_encoder(CountingEncoder(text_encoder, model_id="st:another-model"))
