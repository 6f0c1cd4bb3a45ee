"""Vector search over a segmented layer: the base's ANN index plus an exact scan of the delta.

The base is an immutable FAISS index built at compaction; rows written since live in the delta and are scored
exactly (the delta is kept small by compaction). The `allowed` mask (consent, filters, tombstones) is applied
inside both: a FAISS bitmap selector for the base, a boolean index for the delta. When the mask leaves few base
rows, they are scored exactly instead of asking HNSW to find them among many excluded ones (as Lucene does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer import ann
from search.segments import GrowingArray, VectorRows

# At or below this many allowed base rows, exact scoring beats a filtered HNSW walk (and is exact).
EXACT_FILTER_ROWS = 4096


@dataclass(frozen=True)
class SegmentedVectors:
    base: ann.AnnIndex  # positions 0..B-1 are rows 0..B-1
    vectors: VectorRows  # base rows (a view of the index's storage), then the delta

    @classmethod
    def of(cls, base: ann.AnnIndex) -> SegmentedVectors:
        """A base layer with an empty delta."""
        empty = GrowingArray.of(np.zeros((0, base.index.d), np.float32))
        return cls(base, VectorRows(base.vectors(), empty))

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best `k` allowed rows, best first."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        size = len(self.base)
        rows, scores = self._search_base(query, allowed[:size], k)
        delta_rows = np.flatnonzero(allowed[size : len(self.vectors)]) + size
        if len(delta_rows):
            delta_scores = self.vectors.delta_values[delta_rows - size] @ query
            rows, scores = np.concatenate([rows, delta_rows]), np.concatenate([scores, delta_scores])
        # FAISS and numpy round differently (an orthogonal pair scores 0 in one, 3e-9 in the other): scores
        # equal to 6 decimals are ties, which the ranking breaks by id, wherever the row lives
        scores = np.round(scores, 6)
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order].astype(np.int64), scores[order].astype(np.float32)

    def _search_base(self, query: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        count = int(np.count_nonzero(allowed))
        if count == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if count <= EXACT_FILTER_ROWS and count < len(allowed):
            rows = np.flatnonzero(allowed)
            return rows, self.vectors.base[rows] @ query
        scores, positions = self.base.search(query, k, allowed)
        keep = positions[0] >= 0
        return positions[0][keep].astype(np.int64), scores[0][keep]

    def extend(self, vectors: np.ndarray) -> SegmentedVectors:
        return SegmentedVectors(self.base, self.vectors.extend(vectors))
