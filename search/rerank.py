"""After fusion: negations, the engagement prior, remix-family collapse and MMR diversity."""

from __future__ import annotations

import re
from collections.abc import Mapping
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


# Near-duplicate variants for a query: same context and slot matches, a score close to the representative's,
# and nearly the same text. A remix that changes the setting, time or weather is another scenario and stays.
COLLAPSE_SCORE_MARGIN = 0.2  # a variant scores at least (1 - margin) x its representative's score
COLLAPSE_TEXT_SIMILARITY = 0.8  # cosine of the scenes' text vectors
SCENARIO_COLUMNS = (SceneCol.SETTING, SceneCol.TIME, SceneCol.WEATHER)


def _near_duplicate(snap: Snapshot, rep: Candidate, cand: Candidate, matched: Mapping[int, bytes] | None) -> bool:
    cols = snap.columns
    if any(cols[c][rep.row] != cols[c][cand.row] for c in SCENARIO_COLUMNS):
        return False
    if matched is not None and matched[rep.row] != matched[cand.row]:
        return False
    if cand.score < (1.0 - COLLAPSE_SCORE_MARGIN) * rep.score:
        return False
    return float(snap.text_vecs[rep.row] @ snap.text_vecs[cand.row]) >= COLLAPSE_TEXT_SIMILARITY


def collapse(
    snap: Snapshot, ranked: list[Candidate], allowed: np.ndarray, matched: Mapping[int, bytes] | None = None
) -> list[Candidate]:
    """Fold near-duplicate remixes into the best-ranked member they duplicate; they are listed as its variants.

    `matched`: which of the query's slot terms each ranked row matches (`Retrieval.matched_terms`), or None when
    the query asked no slots. Family members that are distinct scenarios for this query stay results of their own; an
    ineligible member is never listed (the ranking holds only allowed rows)."""
    kept: dict[int, list[Candidate]] = {}  # family -> its representatives so far
    out = []
    for cand in ranked:
        if not allowed[cand.row]:
            continue
        reps = kept.setdefault(int(snap.family[cand.row]), [])
        rep = next((r for r in reps if _near_duplicate(snap, r, cand, matched)), None)
        if rep is None:
            reps.append(cand)
            out.append(cand)
        else:
            rep.variants.append(cand.row)
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
