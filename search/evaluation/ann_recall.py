"""ANN recall: the FAISS HNSW layer against exact search, on the index's own text vectors.

The serving layer is exact (flat) up to `indexer.ann.EXACT_LIMIT` rows and HNSW above it, so this builds the
HNSW graph the index would get at scale (same M / efConstruction / efSearch) over the evaluated vectors and
asks the evaluation queries of both. Recall@k = mean share of the exact top-k that HNSW also returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from indexer import ann
from search.engine import Engine

DEFAULT_KS = (10, 100)


@dataclass
class AnnRecall:
    rows: int
    queries: int
    serving: dict[str, Any]  # the params of the layer the engine searches today
    params: dict[str, Any]  # the HNSW params measured
    recall: dict[int, float]  # k -> recall@k at the module's efSearch
    sweep: dict[int, dict[int, float]] = field(default_factory=dict)  # efSearch -> k -> recall@k
    ms_per_query: dict[str, float] = field(default_factory=dict)  # "exact" / "hnsw" search time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recall_per_k(layer: ann.AnnIndex, queries: np.ndarray, exact: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """One search per k (FAISS explores max(efSearch, k) candidates), scored against the exact top-k."""
    return {k: ann.recall_at_k(layer.search(queries, k)[1], exact[:, :k]) for k in ks}


def _ms_per_query(layer: ann.AnnIndex, queries: np.ndarray, k: int) -> float:
    started = time.perf_counter()
    layer.search(queries, k)
    return round(1000 * (time.perf_counter() - started) / max(1, len(queries)), 3)


def measure(
    vectors: np.ndarray, queries: np.ndarray, ks: Sequence[int] = DEFAULT_KS, ef_sweep: Sequence[int] = ()
) -> AnnRecall:
    """Recall@k of an HNSW index built with `indexer.ann`'s parameters, exact flat search as ground truth."""
    keys = [""] * len(vectors)
    exact_layer = ann.build(vectors, keys, 0, kind="flat")
    hnsw = ann.build(vectors, keys, 0, kind="hnsw")
    ks = sorted({min(k, len(vectors)) for k in ks})
    exact = exact_layer.search(queries, max(ks))[1]
    recall = _recall_per_k(hnsw, queries, exact, ks)
    sweep: dict[int, dict[int, float]] = {}
    for ef in ef_sweep:
        hnsw.params["ef_search"] = int(ef)  # AnnIndex.search explores max(ef_search, k) candidates
        sweep[int(ef)] = _recall_per_k(hnsw, queries, exact, ks)
    hnsw.params["ef_search"] = ann.HNSW_EF_SEARCH
    timing = {"exact": _ms_per_query(exact_layer, queries, max(ks)), "hnsw": _ms_per_query(hnsw, queries, max(ks))}
    return AnnRecall(len(vectors), len(queries), {}, dict(hnsw.params), recall, sweep, timing)


def engine_ann_recall(
    engine: Engine, texts: Sequence[str], ks: Sequence[int] = DEFAULT_KS, ef_sweep: Sequence[int] = ()
) -> AnnRecall:
    """ANN recall on the engine's scene text vectors, for queries encoded with the engine's text encoder."""
    snap = engine.snapshot
    queries = engine.text.encode(list(texts))
    result = measure(snap.text_vecs[snap.live_rows()], queries, ks, ef_sweep)
    result.serving = {"layer": ann.SCENE_TEXT, **snap.text_ann.params, "exact_limit": ann.EXACT_LIMIT}
    return result
