"""Retrieval channels. Each returns snapshot rows ranked best first, restricted to the `allowed` mask.

The mask (consent eligibility, structured filters, tombstones) is applied inside retrieval: the vector
layers skip excluded rows through a FAISS bitmap selector and an exact scan of the delta (`search.vectors`);
full-text search over-fetches by the share of rows excluded and drops them before anything is ranked
downstream. No user text reaches a LanceDB filter string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from indexer.schema import AdCol, SceneCol
from search import evidence
from search.snapshot import Snapshot

FTS_MAX_FETCH = 5_000


@dataclass
class ChannelResult:
    name: str
    rows: np.ndarray  # snapshot rows, best first
    scores: np.ndarray
    best_shot: dict[int, tuple[int, float]] = field(default_factory=dict)  # row -> (shot index, similarity)

    @classmethod
    def empty(cls, name: str) -> ChannelResult:
        return cls(name, np.zeros(0, np.int64), np.zeros(0, np.float32))

    @cached_property
    def ranks(self) -> dict[int, int]:
        """Row -> 1-based rank, built once per result (explanations look up every hit in every channel)."""
        return {int(r): i + 1 for i, r in enumerate(self.rows)}


def dense_text(snap: Snapshot, query_vec: np.ndarray, allowed: np.ndarray, depth: int) -> ChannelResult:
    rows, scores = snap.text.search(query_vec, allowed, depth)
    return ChannelResult("dense", rows, scores)


def clip_text(snap: Snapshot, query_vec: np.ndarray, allowed: np.ndarray, depth: int) -> ChannelResult:
    """CLIP text -> shot keyframes; a scene scores as its best shot."""
    if snap.clip is None or not len(snap.clip):
        return ChannelResult.empty("clip")
    positions, scores = snap.clip.search(query_vec, allowed, depth * 4)
    best: dict[int, tuple[int, float]] = {}
    for pos, score in zip(positions, scores, strict=True):
        row = snap.clip.row_of(int(pos))
        if row not in best:
            best[row] = (snap.clip.index_of(int(pos)), float(score))
    rows = np.array(list(best)[:depth], dtype=np.int64)
    return ChannelResult("clip", rows, np.array([best[int(r)][1] for r in rows], np.float32), best)


def full_text(snap: Snapshot, text: str, allowed: np.ndarray, depth: int) -> ChannelResult:
    """BM25 over the scene document text through LanceDB's native full-text index (at the snapshot's version).

    Hits the mask excludes are dropped, so the first request over-fetches by the share of rows it excludes
    (a few percent usually: its cost follows `depth`, not the catalog); when too few hits survive, it asks
    again for four times as many, up to `FTS_MAX_FETCH` (a filter that leaves few rows may then return fewer
    than `depth`; the vector channels search those rows exactly)."""
    from lancedb.query import MatchQuery

    if not text.strip() or not len(snap):
        return ChannelResult.empty("fts")
    share = max(float(np.count_nonzero(allowed)) / len(allowed), 1e-6)
    limit = min(int(depth / share * 1.1) + 8, max(depth, FTS_MAX_FETCH))
    while True:
        query = MatchQuery(text, SceneCol.DOC)
        hits = snap.scenes_table.search(query, query_type="fts").select([SceneCol.ID, "_score"]).limit(limit)
        table = hits.to_arrow()
        found = [snap.row.get(sid) for sid in table.column(SceneCol.ID).to_pylist()]
        rows = np.array([-1 if r is None else r for r in found], dtype=np.int64)
        keep = rows >= 0
        keep[keep] = allowed[rows[keep]]
        if np.count_nonzero(keep) >= depth or table.num_rows < limit or limit >= FTS_MAX_FETCH:
            break
        limit = min(limit * 4, FTS_MAX_FETCH)
    scores = table.column("_score").to_numpy().astype(np.float32)
    return ChannelResult("fts", rows[keep][:depth], scores[keep][:depth])


def ad_keyword_hits(snap: Snapshot, text: str, limit: int) -> list[tuple[str, float]]:
    """BM25 over ad text (headline, description, keywords, categories, advertiser)."""
    from lancedb.query import MatchQuery

    if not text.strip() or not snap.ads:
        return []
    query = MatchQuery(text, AdCol.DOC)
    hits = snap.ads_table.search(query, query_type="fts").select([AdCol.ID, "_score"]).limit(limit).to_list()
    return [(hit[AdCol.ID], float(hit["_score"])) for hit in hits]


def slots(terms: Sequence[evidence.SlotTerm], candidates: np.ndarray) -> ChannelResult:
    """Slot agreement over `candidates` (rows the retrieval channels found; see `search.evidence`)."""
    if not terms or not len(candidates):
        return ChannelResult.empty("slots")
    score = evidence.agreement(terms, candidates)
    matching = score > 0
    rows, score = candidates[matching], score[matching]
    order = np.argsort(-score, kind="stable")
    return ChannelResult("slots", rows[order].astype(np.int64), score[order].astype(np.float32))
