"""Retrieval channels. Each returns snapshot rows ranked best first, restricted to the `allowed` mask.

The mask (consent eligibility and structured filters) is applied inside retrieval: FAISS skips excluded
positions through an ID selector; full-text search over-fetches by the number of excluded rows and drops
them before anything is ranked downstream. No user text reaches a LanceDB filter string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from indexer.schema import AdCol, SceneCol
from search.intent import IntentFrame
from search.snapshot import Snapshot

# Slot-agreement weights: what a shopper names first (the product) matters most.
SLOT_WEIGHTS = {"sku": 4.0, "category": 3.0, "setting": 2.0, "time_of_day": 1.5, "weather": 1.0, "tone": 1.0}
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
    scores, positions = snap.text_ann.search(query_vec, depth, exclude=np.flatnonzero(~allowed))
    keep = positions[0] >= 0
    return ChannelResult("dense", positions[0][keep].astype(np.int64), scores[0][keep])


def clip_text(snap: Snapshot, query_vec: np.ndarray, allowed: np.ndarray, depth: int) -> ChannelResult:
    """CLIP text -> shot keyframes; a scene scores as its best shot."""
    if snap.clip_ann is None or not len(snap.clip_ann):
        return ChannelResult.empty("clip")
    excluded_shots = np.flatnonzero(~allowed[snap.clip_rows])
    scores, positions = snap.clip_ann.search(query_vec, depth * 4, exclude=excluded_shots)
    best: dict[int, tuple[int, float]] = {}
    for pos, score in zip(positions[0], scores[0], strict=True):
        if pos < 0:
            continue
        row = int(snap.clip_rows[pos])
        if row not in best:
            best[row] = (int(snap.clip_ann.keys[pos].rpartition("#")[2]), float(score))
    rows = np.array(list(best)[:depth], dtype=np.int64)
    return ChannelResult("clip", rows, np.array([best[int(r)][1] for r in rows], np.float32), best)


def full_text(snap: Snapshot, text: str, allowed: np.ndarray, depth: int) -> ChannelResult:
    """BM25 over the scene document text through LanceDB's native full-text index (at the snapshot's version)."""
    from lancedb.query import MatchQuery

    if not text.strip() or not len(snap):
        return ChannelResult.empty("fts")
    excluded = int((~allowed).sum())
    limit = min(depth + excluded, max(depth, FTS_MAX_FETCH))
    query = MatchQuery(text, SceneCol.DOC)
    hits = snap.scenes_table.search(query, query_type="fts").select([SceneCol.ID, "_score"]).limit(limit).to_list()
    rows, scores = [], []
    for hit in hits:
        row = snap.row.get(hit[SceneCol.ID])
        if row is not None and allowed[row]:
            rows.append(row)
            scores.append(hit["_score"])
    return ChannelResult("fts", np.array(rows[:depth], np.int64), np.array(scores[:depth], np.float32))


def ad_keyword_hits(snap: Snapshot, text: str, limit: int) -> list[tuple[str, float]]:
    """BM25 over ad text (headline, description, keywords, categories, advertiser)."""
    from lancedb.query import MatchQuery

    if not text.strip() or not snap.ads:
        return []
    query = MatchQuery(text, AdCol.DOC)
    hits = snap.ads_table.search(query, query_type="fts").select([AdCol.ID, "_score"]).limit(limit).to_list()
    return [(hit[AdCol.ID], float(hit["_score"])) for hit in hits]


def slot_scores(snap: Snapshot, frame: IntentFrame) -> tuple[np.ndarray, float]:
    """Weighted agreement of every row with the frame's slots, and the total weight asked."""
    score = np.zeros(len(snap), dtype=np.float32)
    total = 0.0
    asked = frame.asked()
    if frame.product and frame.sku in snap.sku_rows:
        score[snap.sku_rows[frame.sku]] += SLOT_WEIGHTS["sku"]
        total += SLOT_WEIGHTS["sku"]
    for value in asked.get("category", []):
        score += SLOT_WEIGHTS["category"] * snap.categories.column(value)
        total += SLOT_WEIGHTS["category"]
    for slot, codes in (("setting", snap.setting), ("time_of_day", snap.time_of_day), ("weather", snap.weather)):
        for value in asked.get(slot, []):
            score += SLOT_WEIGHTS[slot] * (codes.codes == codes.code(value))
            total += SLOT_WEIGHTS[slot]
    for value in asked.get("tone", []):
        score += SLOT_WEIGHTS["tone"] * snap.tones.column(value)
        total += SLOT_WEIGHTS["tone"]
    return score, total


def slots(snap: Snapshot, frame: IntentFrame, allowed: np.ndarray, depth: int) -> ChannelResult:
    score, total = slot_scores(snap, frame)
    if total == 0:
        return ChannelResult.empty("slots")
    score = np.where(allowed, score / total, 0.0)
    candidates = np.flatnonzero(score > 0)
    order = candidates[np.argsort(-score[candidates], kind="stable")][:depth]
    return ChannelResult("slots", order.astype(np.int64), score[order].astype(np.float32))
