"""After fusion: negations, the engagement prior, remix-family collapse and MMR diversity."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from indexer.schema import LIST_SLOT_COLUMNS, SINGLE_SLOT_COLUMNS, SceneCol
from search.intent import IntentFrame, load_lexicon
from search.snapshot import Snapshot

NEGATION_MODES = ("exclude", "demote")
DEMOTE_FACTOR = 0.25  # a negated match keeps a quarter of its score in "demote" mode
TERM_DEMOTE_FACTOR = 0.5  # a negated free word (not a vocabulary label) only ever demotes


@dataclass
class Candidate:
    row: int
    score: float
    variants: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _violations(snap: Snapshot, frame: IntentFrame, row: int) -> tuple[list[str], list[str]]:
    """(hard, soft) negation violations of one row: hard ones name a slot the scene has."""
    hard, soft = [], []
    cols = snap.columns
    for neg in frame.negations:
        if neg.slot in SINGLE_SLOT_COLUMNS and cols[SINGLE_SLOT_COLUMNS[neg.slot]][row] == neg.value:
            hard.append(f"{neg.slot}={neg.value}")
        elif neg.slot in LIST_SLOT_COLUMNS and neg.value in (cols[LIST_SLOT_COLUMNS[neg.slot]][row] or []):
            hard.append(f"{neg.slot}={neg.value}")
        elif neg.slot == "people" and (cols[SceneCol.CAMEOS][row] or _mentions(snap, row, load_lexicon().people)):
            hard.append("people")
        elif neg.slot == "term" and _mentions(snap, row, {neg.value}):
            soft.append(f"mentions '{neg.value}'")
    return hard, soft


def _mentions(snap: Snapshot, row: int, words: set[str] | frozenset[str]) -> bool:
    text = f"{snap.columns[SceneCol.PROMPT][row]} {snap.columns[SceneCol.CAPTION][row] or ''}".lower()
    return any(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def apply_negations(
    snap: Snapshot, frame: IntentFrame, fused: dict[int, float], mode: str = "exclude"
) -> dict[int, tuple[float, list[str]]]:
    out: dict[int, tuple[float, list[str]]] = {}
    for row, score in fused.items():
        hard, soft = _violations(snap, frame, row) if frame.negations else ([], [])
        if hard and mode == "exclude":
            continue
        factor = (DEMOTE_FACTOR if hard else 1.0) * (TERM_DEMOTE_FACTOR if soft else 1.0)
        out[row] = (score * factor, [f"negated: {v}" for v in hard + soft])
    return out


def dwell_prior(snap: Snapshot, rows: np.ndarray, weight: float) -> np.ndarray:
    """Multiplier 1 + weight * log-scaled dwell time in [0, 1]; weight 0 turns the prior off."""
    if weight <= 0 or not len(rows):
        return np.ones(len(rows))
    top = float(np.log1p(snap.dwell.max())) or 1.0
    prior: np.ndarray = 1.0 + weight * np.log1p(snap.dwell[rows]) / top
    return prior


def collapse(snap: Snapshot, ranked: list[Candidate], allowed: np.ndarray) -> list[Candidate]:
    """One result per remix family (its best member); other eligible members become variants."""
    seen: set[int] = set()
    out = []
    for cand in ranked:
        family = int(snap.family[cand.row])
        if family in seen:
            continue
        seen.add(family)
        members = snap.family_members.get(family, [cand.row])
        cand.variants = [m for m in members if m != cand.row and allowed[m]]
        out.append(cand)
    return out


def mmr(snap: Snapshot, ranked: list[Candidate], k: int, lam: float) -> list[Candidate]:
    """Maximal marginal relevance over text vectors: lam * relevance - (1 - lam) * max similarity to picked."""
    if not ranked:
        return ranked
    pool = ranked[: max(k * 5, k)]
    scores = np.array([c.score for c in pool])
    rel = (scores - scores.min()) / (np.ptp(scores) or 1.0)
    vecs = snap.text_vecs[[c.row for c in pool]]
    picked: list[int] = []
    remaining = list(range(len(pool)))
    while remaining and len(picked) < k:
        if picked:
            redundancy = (vecs[remaining] @ vecs[picked].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining))
        best = remaining[int(np.argmax(lam * rel[remaining] - (1 - lam) * redundancy))]
        picked.append(best)
        remaining.remove(best)
    return [pool[i] for i in picked] + [c for i, c in enumerate(ranked) if i >= len(pool)]
