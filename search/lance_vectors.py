"""The dense text layer served from the scenes table's IVF_PQ index (`ann="lance"`): caches, not the layer.

The base is the scenes table pinned at the base snapshot's version (immutable, so its rows are exactly the
base's rows, in the same order: base position = Lance row offset at that version). A search asks Lance for
the nearest rows, over-fetched by how much of the base the `allowed` mask (consent, filters, tombstones) lets
through, and keeps the allowed ones; when few base rows are allowed it scores just those exactly, fetching
their vectors. The delta (rows written since) stays in memory and is scored exactly, as in `SegmentedVectors`.

No matrix of base vectors is held: the vectors of specific rows (collapse, MMR, recommend-by-example) are
taken by offset at the pinned version on demand, and the latest fetched kept in a bounded cache.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer import ann, lance_ann
from indexer.lance_ann import DISTANCE, LanceAnn
from indexer.schema import SCENES, SceneCol
from indexer.store import Store, to_matrix
from search.segments import GrowingArray
from search.vectors import EXACT_FILTER_ROWS, SegmentedVectors

CACHE_ROWS = 16_384  # base vectors kept after a fetch: ~25 MB at 384-d, bounded whatever the catalog
OVERFETCH = 1.5  # ask for this many times k / (allowed share of the base): the filter drops the rest
REFETCH_GROWTH = 4  # too few allowed among them: ask again for this many times more ...
MAX_FETCH = 50_000  # ... up to this many (past it the page may come back short: a narrow filter on a big base)
TAKE_BATCH = 4_096  # offsets per take


class LanceBase:
    """The scenes table pinned at one version, searched through its IVF_PQ index."""

    def __init__(self, table: Any, keys: list[str], version: int, settings: LanceAnn, dim: int):
        self.table = table  # checked out at `version`: never moves
        self.keys = keys  # position (row offset) -> scene id
        self.version = version
        self.settings = settings
        self.dim = dim
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # searches on several threads share the cache

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def params(self) -> dict[str, Any]:
        return {**self.settings.params, "version": self.version}

    def nearest(self, query: np.ndarray, limit: int, widen: bool = False) -> tuple[list[str], np.ndarray]:
        """(scene ids, inner-product scores) of the `limit` nearest rows, best first; `widen`: probe more than
        `nprobes` partitions when those hold fewer than `limit` rows (Lance's adaptive probing, slower)."""
        search = (
            self.table.search(query, vector_column_name=SceneCol.TEXT_VEC)
            .distance_type(DISTANCE)
            .minimum_nprobes(self.settings.nprobes)
            .maximum_nprobes(0 if widen else self.settings.nprobes)
        )
        if self.settings.refine_factor:
            search = search.refine_factor(self.settings.refine_factor)  # exact distances for what is returned
        found = search.select([SceneCol.ID]).limit(limit).to_arrow()
        ids = [str(s) for s in found.column(SceneCol.ID).to_pylist()]
        # cosine distance of unit vectors is 1 - their inner product: the score FAISS and the delta give
        return ids, 1.0 - found.column("_distance").to_numpy().astype(np.float32)

    def take(self, positions: np.ndarray) -> np.ndarray:
        """Vectors at base positions (rows in the order asked), from the cache or taken at the pinned version."""
        wanted = [int(p) for p in np.asarray(positions, dtype=np.int64).reshape(-1)]
        with self._lock:
            found = {p: v for p in wanted if (v := self._cache.get(p)) is not None}
        missing = sorted(set(wanted) - set(found))
        for i in range(0, len(missing), TAKE_BATCH):
            batch = missing[i : i + TAKE_BATCH]
            table = self.table.take_offsets(batch).select([SceneCol.TEXT_VEC, "_rowoffset"]).to_arrow()
            vectors = to_matrix(table.column(SceneCol.TEXT_VEC), self.dim)
            found.update(zip(table.column("_rowoffset").to_pylist(), vectors, strict=True))
        with self._lock:  # first in, first out: bounded whatever the access pattern
            for p in missing[-CACHE_ROWS:]:
                self._cache[p] = found[p]
            while len(self._cache) > CACHE_ROWS:
                self._cache.popitem(last=False)
        out = np.empty((len(wanted), self.dim), np.float32)
        for i, p in enumerate(wanted):
            out[i] = found[p]
        return out


def load_base(store: Store, version: int, settings: LanceAnn) -> LanceBase | None:
    """The base at `version` of the scenes table: its ids in row-offset order (the vectors stay in Lance).
    None when that version predates the IVF_PQ index the table has now (e.g. a saved base from before
    `ensure` built it): Lance would scan every vector flat, so the caller loads the live tables instead."""
    table = store.pinned(SCENES, version)
    if lance_ann.vector_index(table) is None and lance_ann.vector_index(store.table(SCENES)) is not None:
        return None
    scanned = table.search().select([SceneCol.ID, "_rowoffset"]).limit(None).to_arrow()
    offsets = scanned.column("_rowoffset").to_numpy()
    order = np.argsort(offsets, kind="stable")
    if not np.array_equal(offsets[order], np.arange(len(offsets))):
        raise RuntimeError(f"scenes table at version {version} returned row offsets with gaps")
    ids = scanned.column(SceneCol.ID).to_pylist()
    keys = [str(ids[i]) for i in order]
    return LanceBase(table, keys, version, settings, store.manifest.text_dim)


class LanceRows:
    """Row vectors by position, as `VectorRows` gives them: base rows taken from Lance, the delta in memory."""

    def __init__(self, base: LanceBase, delta: GrowingArray):
        self.base = base
        self.delta = delta

    def __len__(self) -> int:
        return len(self.base) + self.delta.n

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.base.dim

    def __getitem__(self, rows: Any) -> np.ndarray:
        index = np.asarray(rows, dtype=np.int64)
        if index.ndim == 0:
            one: np.ndarray = self[index.reshape(1)][0]
            return one
        if len(index) and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"rows out of range 0..{len(self) - 1}")
        size = len(self.base)
        out = np.empty((len(index), self.base.dim), dtype=np.float32)
        in_base = index < size
        if in_base.any():
            out[in_base] = self.base.take(index[in_base])
        out[~in_base] = self.delta.values[index[~in_base] - size]
        return out

    def extend(self, vectors: np.ndarray) -> LanceRows:
        return LanceRows(self.base, self.delta.extend(np.asarray(vectors, dtype=np.float32)))

    @property
    def delta_values(self) -> np.ndarray:
        return self.delta.values


@dataclass(frozen=True)
class LanceVectors:
    """`SegmentedVectors` with a Lance base: the same search, extend and row access."""

    base: LanceBase
    positions: Mapping[str, int]  # scene id -> base position (the base snapshot's own map, shared)
    vectors: LanceRows

    @classmethod
    def of(cls, base: LanceBase, positions: Mapping[str, int]) -> LanceVectors:
        empty = GrowingArray.of(np.zeros((0, base.dim), np.float32))
        return cls(base, positions, LanceRows(base, empty))

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
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order].astype(np.int64), scores[order].astype(np.float32)

    def _search_base(self, query: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        size, count = len(allowed), int(np.count_nonzero(allowed))
        if count == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        limit = min(size, math.ceil(OVERFETCH * k * size / count))
        if count <= min(EXACT_FILTER_ROWS, limit) and count < size:
            # few allowed (no more than the over-fetching query would return): score exactly, fetching only theirs
            rows = np.flatnonzero(allowed)
            return rows, self.base.take(rows) @ query
        widen = False
        for _ in range(8):  # a few rounds at most: the limit grows geometrically to its cap
            ids, scores = self.base.nearest(query, limit, widen)
            rows = np.fromiter((self.positions[i] for i in ids), dtype=np.int64, count=len(ids))
            keep = allowed[rows]
            short = len(ids) < limit  # the probed partitions ran out before the limit
            if int(keep.sum()) >= k or (limit >= min(size, MAX_FETCH) and (widen or not short)):
                break
            if short and not widen:
                widen = True
            else:
                limit = min(size, MAX_FETCH, limit * REFETCH_GROWTH)
        return rows[keep][:k], scores[keep][:k]

    def extend(self, vectors: np.ndarray) -> LanceVectors:
        return LanceVectors(self.base, self.positions, self.vectors.extend(vectors))


TextLayer = SegmentedVectors | LanceVectors


def text_layer(base: ann.AnnIndex | LanceBase, positions: Mapping[str, int]) -> TextLayer:
    """The snapshot's dense text layer over its base: FAISS in memory, or Lance's index."""
    return LanceVectors.of(base, positions) if isinstance(base, LanceBase) else SegmentedVectors.of(base)
