"""Slot agreement as evidence about candidates the retrieval channels found, never a retrieval of its own.

The frame's slots (product, category, setting, time, weather, tone) are compared with each scene's given or
inferred slots. Each asked value counts with its slot weight times its confidence: 1 for a lexicon or product
slot, less for one resolved by embedding similarity (`search.intent.embedding_confidence`). Agreement is
divided by the *full* weight asked, so a low-confidence guess can lift a candidate a little and never to the top.

Only candidates from dense, full-text or CLIP retrieval are scored, plus the scenes that show the request's
exact sku (a product the shopper named is a fact, not a guess). A slot guessed wrongly therefore reorders
what the semantic channels found instead of filling the ranking with scenes that merely share a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from search.intent import IntentFrame
from search.scene_rows import Codes, MultiHot
from search.snapshot import Snapshot

# What a shopper names first (the product) matters most.
SLOT_WEIGHTS = {"sku": 4.0, "category": 3.0, "setting": 2.0, "time_of_day": 1.5, "weather": 1.0, "tone": 1.0}
# Agreement is divided by at least this much weight, so a frame that asks little (a tone alone) can say
# little: a single tone match is worth a quarter of a full match, a category with setting and time all of it.
MIN_TOTAL_WEIGHT = 4.0
RETRIEVAL_CHANNELS = ("dense", "fts", "clip")
FIRM_SOURCES = ("lexicon", "product")  # sources whose slots are taken at face value


@dataclass(frozen=True)
class SlotTerm:
    """One asked value and which rows agree with it (`known`: rows that have any value for the slot)."""

    slot: str
    value: str
    source: str
    weight: float
    confidence: float
    match: np.ndarray  # bool per snapshot row
    known: np.ndarray  # bool per snapshot row

    @property
    def firm(self) -> bool:
        return self.source in FIRM_SOURCES


def slot_terms(snap: Snapshot, frame: IntentFrame) -> Iterator[SlotTerm]:
    """Every value the frame asks for, matched against every row of the snapshot (numpy, no loop over rows)."""
    everyone = np.ones(len(snap), dtype=bool)
    if frame.product and frame.sku:
        match = np.zeros(len(snap), dtype=bool)
        match[snap.sku_rows.get(frame.sku, np.zeros(0, np.int64))] = True
        yield SlotTerm("sku", frame.sku, "product", SLOT_WEIGHTS["sku"], 1.0, match, everyone)
    single = {"setting": snap.setting, "time_of_day": snap.time_of_day, "weather": snap.weather}
    multi = {"category": snap.categories, "tone": snap.tones}
    for slot, values in frame.slot_values().items():
        for value in values:
            if slot in single:
                codes = single[slot]
                match = np.asarray(codes.codes == codes.code(value.value), dtype=bool)
            else:
                match = multi[slot].column(value.value)
            known = _known(snap, slot, single.get(slot) or multi[slot])
            yield SlotTerm(slot, value.value, value.source, SLOT_WEIGHTS[slot], value.confidence, match, known)


def _known(snap: Snapshot, slot: str, values: Codes | MultiHot) -> np.ndarray:
    """Rows that have any value for the slot: the same for every query, so built once per snapshot."""
    key = f"known:{slot}"
    known: np.ndarray | None = snap.derived.get(key)
    if known is None:
        held = values.codes >= 0 if isinstance(values, Codes) else values.matrix.any(axis=1)
        known = snap.derived[key] = np.asarray(held, dtype=bool)
    return known


def agreement(terms: Sequence[SlotTerm], rows: np.ndarray) -> np.ndarray:
    """Confidence-weighted agreement of each of `rows`, in [0, 1], over the full weight asked (0 when nothing
    is asked). Sized by the rows asked about (the candidates), not the catalog."""
    score = np.zeros(len(rows), dtype=np.float32)
    if not terms:
        return score
    total = max(sum(t.weight for t in terms), MIN_TOTAL_WEIGHT)
    for t in terms:
        score += np.float32(t.weight * t.confidence) * t.match[rows]
    return score / np.float32(total)


def candidate_rows(
    snap: Snapshot, frame: IntentFrame, retrieved: Iterable[np.ndarray], allowed: np.ndarray
) -> np.ndarray:
    """Rows any retrieval channel found, plus the allowed scenes showing the request's exact sku."""
    parts = [np.asarray(rows, dtype=np.int64) for rows in retrieved]
    if frame.product and frame.sku is not None and frame.sku in snap.sku_rows:
        sku_rows = snap.sku_rows[frame.sku]
        parts.append(sku_rows[allowed[sku_rows]])
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def frame_confidence(terms: Sequence[SlotTerm]) -> float:
    """How much the frame has to say: the confidence-weighted share of slot weight it asks (0 = nothing)."""
    full = sum(SLOT_WEIGHTS.values())
    return float(min(sum(t.weight * t.confidence for t in terms) / full, 1.0))
