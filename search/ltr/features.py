"""Features of one query's candidates for learned fusion: what each channel said, what the frame agreed on.

Every feature is scale-free across catalogs (scores divided by the channel's best, reciprocal ranks, shares of
the weight asked), so a model trained on one judged set can be applied to another. A candidate a channel did
not return gets 0 for that channel's score and reciprocal rank, and 0 for its presence flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search.channels import ChannelResult
from search.evidence import RETRIEVAL_CHANNELS, SlotTerm, candidate_rows, frame_confidence
from search.intent import IntentFrame
from search.snapshot import Snapshot

RRF_K = 60

FEATURES: tuple[str, ...] = (
    *(f"{ch}_{kind}" for ch in RETRIEVAL_CHANNELS for kind in ("score", "rrf", "present")),
    "rrf_sum",  # the RRF baseline itself, so a tree can start from it
    "firm_match",  # lexicon/product slots the scene agrees with, share of the weight asked
    "firm_mismatch",  # ... the scene has another value for
    "guess_match",  # embedding-resolved slots, confidence-weighted
    "guess_mismatch",
    "sku_match",
    "frame_confidence",
    "query_words",
)


def _channel_columns(rows: np.ndarray, result: ChannelResult | None) -> np.ndarray:
    """(normalised score, reciprocal rank, present) of each candidate in one channel."""
    out = np.zeros((len(rows), 3), dtype=np.float32)
    if result is None or not len(result.rows):
        return out
    top = float(np.max(result.scores))
    index = {int(r): i for i, r in enumerate(result.rows)}
    for j, row in enumerate(rows):
        i = index.get(int(row))
        if i is not None:
            out[j] = (float(result.scores[i]) / top if top > 0 else 0.0, 1.0 / (RRF_K + i + 1), 1.0)
    return out


def _slot_columns(rows: np.ndarray, terms: Sequence[SlotTerm]) -> np.ndarray:
    out = np.zeros((len(rows), 5), dtype=np.float32)
    total = sum(t.weight for t in terms)
    for t in terms:
        match, other = t.match[rows], t.known[rows] & ~t.match[rows]
        share = t.weight / total
        if t.slot == "sku":
            out[:, 4] += match
        if t.firm:
            out[:, 0] += share * match
            out[:, 1] += share * other
        else:
            out[:, 2] += share * t.confidence * match
            out[:, 3] += share * t.confidence * other
    return out


def candidate_features(
    snap: Snapshot, frame: IntentFrame, results: Sequence[ChannelResult], terms: Sequence[SlotTerm], allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate rows, feature matrix rows x FEATURES) for one query."""
    by_name = {r.name: r for r in results}
    retrieved = [by_name[c].rows for c in RETRIEVAL_CHANNELS if c in by_name]
    rows = candidate_rows(snap, frame, retrieved, allowed)
    channel = np.hstack([_channel_columns(rows, by_name.get(c)) for c in RETRIEVAL_CHANNELS])
    rrf_sum = channel[:, 1::3].sum(axis=1, keepdims=True)
    query = np.tile(
        np.array([frame_confidence(terms), len(frame.search_text.split())], dtype=np.float32), (len(rows), 1)
    )
    features = np.hstack([channel, rrf_sum, _slot_columns(rows, terms), query]).astype(np.float32)
    assert features.shape[1] == len(FEATURES)
    return rows, features
