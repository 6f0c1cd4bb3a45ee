"""Building result objects with explanations a relevance engineer can read."""

from __future__ import annotations

import numpy as np

from indexer.schema import LIST_SLOT_COLUMNS, SINGLE_SLOT_COLUMNS, SceneCol
from search.ads import AdMatch
from search.channels import ChannelResult
from search.intent import IntentFrame
from search.rerank import Candidate
from search.results import AdHit, Explanation, SceneHit, ShotRef
from search.snapshot import Snapshot


def slot_agreement(snap: Snapshot, frame: IntentFrame, row: int) -> tuple[dict[str, str], dict[str, str]]:
    """(matched, mismatched) slots of one scene against what the frame asked."""
    cols = snap.columns
    matched: dict[str, str] = {}
    mismatched: dict[str, str] = {}
    if frame.product and frame.sku:
        if frame.sku in (cols[SceneCol.SKUS][row] or []):
            matched["sku"] = frame.sku
        else:
            mismatched["sku"] = f"asked {frame.sku}"
    for slot, wanted in frame.asked().items():
        if slot in LIST_SLOT_COLUMNS:
            have = cols[LIST_SLOT_COLUMNS[slot]][row] or []
            hits = [w for w in wanted if w in have]
            if hits:
                matched[slot] = ", ".join(hits)
            else:
                mismatched[slot] = f"asked {', '.join(wanted)}, scene has {', '.join(have) or 'none'}"
            continue
        have_value = cols[SINGLE_SLOT_COLUMNS[slot]][row]
        if have_value in wanted:
            matched[slot] = have_value
        else:
            mismatched[slot] = f"asked {wanted[0]}, scene has {have_value or 'unknown'}"
    return matched, mismatched


def best_shot(snap: Snapshot, row: int, results: list[ChannelResult], clip_vec: np.ndarray | None) -> ShotRef | None:
    shots = snap.shots.get(snap.ids[row], [])
    if not shots:
        return None
    positions = snap.clip.of_row(row) if snap.clip is not None else []
    if clip_vec is not None and positions and snap.clip is not None:
        sims = snap.clip.vectors.vectors[positions] @ clip_vec.reshape(-1)
        best = int(np.argmax(sims))
        index = snap.clip.index_of(positions[best])
        shot = next(s for s in shots if s.index == index)
        return ShotRef(shot.index, shot.start_s, shot.end_s, shot.thumb_path, shot.media_path, float(sims[best]))
    shot = shots[0]
    return ShotRef(shot.index, shot.start_s, shot.end_s, shot.thumb_path, shot.media_path, None, basis="first")


def scene_hit(
    snap: Snapshot, cand: Candidate, frame: IntentFrame, results: list[ChannelResult], clip_vec: np.ndarray | None
) -> SceneHit:
    row, cols = cand.row, snap.columns
    why = Explanation(inferred=list(cols[SceneCol.INFERRED][row] or []), notes=list(cand.notes))
    for result in results:
        rank = result.ranks.get(row)
        if rank is not None:
            why.ranks[result.name] = rank
            why.channels[result.name] = round(float(result.scores[rank - 1]), 4)
    why.matched, why.mismatched = slot_agreement(snap, frame, row)
    return SceneHit(
        **snap.scene_fields(row),
        score=round(cand.score, 6),
        variants=[snap.ids[v] for v in cand.variants],
        best_shot=best_shot(snap, row, results, clip_vec),
        explanation=why,
    )


def ad_hit(match: AdMatch) -> AdHit:
    record = match.ad.record
    parts = [f"relevance {match.relevance:.2f}"] + match.matched + [f"bid {match.ad.bid_cpm:.2f} CPM"]
    return AdHit(
        ad_id=match.ad.ad_id,
        score=round(match.score, 6),
        relevance=round(match.relevance, 6),
        bid_cpm=match.ad.bid_cpm,
        advertiser=record.get("advertiser"),
        headline=record.get("headline"),
        landing_url=record.get("landing_url"),
        components={k: round(v, 4) for k, v in match.components.items()},
        explanation="; ".join(parts),
    )
