"""Ad matching: relevance to the intent and its top scenes first, bid second, under a relevance floor.

relevance = sku match + category match + semantic similarity of ad text to the query + tone alignment,
each weighted and the sum scaled to [0, 1]. Ads below `floor` are dropped whatever they bid; the bid
then lifts relevant ads by at most `bid_weight` (x1.3 by default), so money reorders near-ties but never
buys an irrelevant slot. Ads whose creative scenes are not eligible for "ads" use are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from indexer.schema import SceneCol
from search.intent import IntentFrame
from search.snapshot import AdEntry, Snapshot
from search.trust import ad_credentialed

AD_VARIANTS = ("keyword", "dense", "hybrid", "intent")
WEIGHTS = {"sku": 0.35, "category": 0.25, "semantic": 0.25, "tone": 0.15}
RELEVANCE_FLOOR = 0.3
BID_WEIGHT = 0.3


@dataclass
class AdMatch:
    ad: AdEntry
    score: float
    relevance: float
    components: dict[str, float]
    matched: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdContext:
    """What the ads are matched against: the frame plus what the top scenes show."""

    skus: frozenset[str]
    categories: frozenset[str]
    tones: frozenset[str]

    @classmethod
    def build(cls, snap: Snapshot, frame: IntentFrame, top_rows: list[int]) -> AdContext:
        cols = snap.columns
        asked = frame.asked()
        skus: set[str] = {frame.sku} if frame.product and frame.sku else set()
        categories, tones = set(asked.get("category", [])), set(asked.get("tone", []))
        for row in top_rows:  # what the frame leaves open is taken from the scenes it found
            skus.update(cols[SceneCol.SKUS][row] or [])
            if "category" not in asked:
                categories.update(cols[SceneCol.CATEGORIES][row] or [])
            if "tone" not in asked:
                tones.update(cols[SceneCol.TONES][row] or [])
        return cls(frozenset(skus), frozenset(categories), frozenset(tones))


def _components(ad: AdEntry, ctx: AdContext, frame: IntentFrame, semantic: float) -> tuple[dict[str, float], list[str]]:
    matched = []
    sku = 0.0
    if frame.sku and frame.sku in ad.skus:
        sku, matched = 1.0, [f"sku {frame.sku}"]
    elif ad.skus & ctx.skus:
        sku, matched = 0.5, [f"sku {sorted(ad.skus & ctx.skus)[0]} (in top scenes)"]
    category = 1.0 if ad.categories & ctx.categories else 0.0
    if category:
        matched.append(f"category {sorted(ad.categories & ctx.categories)[0]}")
    tone = len(ad.target_tones & ctx.tones) / len(ad.target_tones) if ad.target_tones else 0.0
    if tone:
        matched.append(f"tone {', '.join(sorted(ad.target_tones & ctx.tones))}")
    return {"sku": sku, "category": category, "semantic": max(0.0, semantic), "tone": tone}, matched


def match_ads(
    snap: Snapshot,
    frame: IntentFrame,
    query_vec: np.ndarray,
    top_rows: list[int],
    now: datetime,
    k: int = 5,
    require_credentials: bool = False,
    floor: float = RELEVANCE_FLOOR,
    bid_weight: float = BID_WEIGHT,
) -> list[AdMatch]:
    """`require_credentials`: an ad runs only if each creative scene carries a verified C2PA credential."""
    if not snap.ads:
        return []
    ctx = AdContext.build(snap, frame, top_rows)
    semantic = snap.ad_vecs @ np.asarray(query_vec, dtype=np.float32).reshape(-1)
    max_bid = max(ad.bid_cpm for ad in snap.ads) or 1.0
    matches = []
    for ad, sim in zip(snap.ads, semantic, strict=True):
        if not all(snap.scene_eligible(s, "ads", now) for s in ad.creatives):
            continue
        if require_credentials and not ad_credentialed(snap, ad):
            continue
        components, matched = _components(ad, ctx, frame, float(sim))
        relevance = sum(WEIGHTS[name] * value for name, value in components.items())
        if relevance < floor:
            continue
        score = relevance * (1.0 + bid_weight * np.log1p(ad.bid_cpm) / np.log1p(max_bid))
        matches.append(AdMatch(ad, float(score), float(relevance), components, matched))
    matches.sort(key=lambda m: (-m.score, m.ad.ad_id))
    return matches[:k]


def rank_ads_by_text(
    snap: Snapshot, keyword_hits: list[tuple[str, float]], query_vec: np.ndarray, variant: str, now: datetime, k: int
) -> list[tuple[str, float]]:
    """Baseline ad rankings for experiments: keyword (BM25 over ad text), dense, or their RRF hybrid.

    Eligibility (creative consent for "ads") is enforced here too; the intent variant is `match_ads`.
    """
    eligible = {a.ad_id for a in snap.ads if all(snap.scene_eligible(s, "ads", now) for s in a.creatives)}
    keyword = [(ad_id, score) for ad_id, score in keyword_hits if ad_id in eligible]
    sims = snap.ad_vecs @ np.asarray(query_vec, dtype=np.float32).reshape(-1) if snap.ads else np.zeros(0)
    dense = sorted(
        ((a.ad_id, float(s)) for a, s in zip(snap.ads, sims, strict=True) if a.ad_id in eligible),
        key=lambda pair: -pair[1],
    )
    if variant == "keyword":
        return keyword[:k]
    if variant == "dense":
        return dense[:k]
    if variant == "hybrid":
        fused: dict[str, float] = {}
        for ranking in (keyword, dense):
            for rank, (ad_id, _) in enumerate(ranking, start=1):
                fused[ad_id] = fused.get(ad_id, 0.0) + 1.0 / (60 + rank)
        return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    raise ValueError(f"unknown ad variant '{variant}' (choose {', '.join(AD_VARIANTS)})")
