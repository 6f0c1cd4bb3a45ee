"""Building the `...Public` response models from search results and the serving snapshot."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from api.schemas import (
    AdPublic,
    ExplanationPublic,
    IntentFramePublic,
    LineageNodePublic,
    LineagePublic,
    SceneHitPublic,
    ScenePublic,
    SearchPublic,
    ShotPublic,
    StatsPublic,
)
from api.schemas_trust import DisclosurePublic, FamilyPublic, ProvenancePublic
from indexer.pipeline import THUMBS_DIR
from indexer.schema import USES, SceneCol
from search.disclosure import provenance_view
from search.families import family_of, family_table
from search.lineage import LineageNode, credit_chain, lineage
from search.results import AdHit, SceneHit, SearchResponse, ShotRef
from search.snapshot import AdEntry, Shot, Snapshot

THUMBNAIL_ROUTE = "/v1/thumbnails/"


def thumbnail_url(thumb_path: str | None) -> str | None:
    """`thumbs/scn-1/0-0.jpg` (relative to the index folder) -> `/v1/thumbnails/scn-1/0-0.jpg`."""
    prefix = THUMBS_DIR + "/"
    if not thumb_path or not thumb_path.startswith(prefix):
        return None
    return THUMBNAIL_ROUTE + quote(thumb_path[len(prefix) :])


def shot_public(shot: ShotRef | Shot) -> ShotPublic:
    if isinstance(shot, ShotRef):
        return ShotPublic(
            index=shot.index,
            start_s=shot.start_s,
            end_s=shot.end_s,
            thumbnail_url=thumbnail_url(shot.thumbnail),
            similarity=shot.similarity,
            basis=shot.basis,
        )
    return ShotPublic(
        index=shot.index, start_s=shot.start_s, end_s=shot.end_s, thumbnail_url=thumbnail_url(shot.thumb_path)
    )


def scene_hit_public(hit: SceneHit, explain: bool) -> SceneHitPublic:
    why = hit.explanation
    explanation = (
        ExplanationPublic(
            channels=why.channels,
            ranks=why.ranks,
            matched=why.matched,
            mismatched=why.mismatched,
            inferred=why.inferred,
            notes=why.notes,
            summary=why.summary(),
        )
        if explain
        else None
    )
    return SceneHitPublic(
        scene_id=hit.scene_id,
        score=hit.score,
        prompt=hit.prompt,
        caption=hit.caption,
        setting=hit.setting,
        time_of_day=hit.time_of_day,
        weather=hit.weather,
        tones=hit.tones,
        categories=hit.categories,
        skus=hit.skus,
        parent_id=hit.parent_id,
        parent_missing=hit.parent_missing,
        family_id=hit.family_id,
        variants=hit.variants,
        best_shot=shot_public(hit.best_shot) if hit.best_shot else None,
        matched_slots=why.matched,
        explanation=explanation,
        disclosure=DisclosurePublic.model_validate(hit.disclosure) if hit.disclosure else None,
        provenance=ProvenancePublic.model_validate(hit.provenance) if hit.provenance else None,
        credit=hit.credit,
    )


def ad_public(ad: AdHit) -> AdPublic:
    return AdPublic(**{name: getattr(ad, name) for name in AdPublic.model_fields})


def ranked_ad_public(ad_id: str, score: float, entries: dict[str, AdEntry]) -> AdPublic:
    """An ad from a baseline ranking (keyword, dense, hybrid): its score plus what the catalog says of it."""
    entry = entries.get(ad_id)
    record: dict[str, Any] = entry.record if entry else {}
    return AdPublic(
        ad_id=ad_id,
        score=round(score, 6),
        bid_cpm=entry.bid_cpm if entry else None,
        advertiser=record.get("advertiser"),
        headline=record.get("headline"),
        landing_url=record.get("landing_url"),
    )


def search_public(
    response: SearchResponse, variant: str, explain: bool, took_ms: float, reference_image: bool = False
) -> SearchPublic:
    return SearchPublic(
        query=response.query,
        use=response.use,
        variant=variant,
        frame=IntentFramePublic.model_validate(response.frame),
        scenes=[scene_hit_public(hit, explain) for hit in response.scenes],
        ads=[ad_public(ad) for ad in response.ads],
        channels=response.channels,
        fusion=response.fusion,
        clip_status=response.clip_status,
        text_encoder=response.text_encoder,
        reference_image=reference_image,
        index_versions=response.index_versions,
        took_ms=round(took_ms, 2),
    )


def scene_public(snap: Snapshot, scene_id: str, now: datetime) -> ScenePublic | None:
    row = snap.row.get(scene_id)
    if row is None:
        return None
    cols = snap.columns
    return ScenePublic(
        **snap.scene_fields(row),
        creator_id=cols[SceneCol.CREATOR][row],
        created_at=cols[SceneCol.CREATED][row],
        brands=list(cols[SceneCol.BRANDS][row] or []),
        cameos=list(cols[SceneCol.CAMEOS][row] or []),
        generator=cols[SceneCol.GENERATOR][row],
        inferred=list(cols[SceneCol.INFERRED][row] or []),
        shots=[shot_public(s) for s in snap.shots.get(scene_id, [])],
        eligible={use: snap.scene_eligible(scene_id, use, now) for use in USES},
        provenance=ProvenancePublic.model_validate(provenance_view(snap, row)),
        media_credentials=[  # the file name only: server paths stay private
            {**m, "path": PurePath(m["path"]).name} for m in json.loads(cols[SceneCol.C2PA_MEDIA][row] or "[]")
        ],
    )


def lineage_public(snap: Snapshot, scene_id: str, now: datetime, show_all: bool = False) -> LineagePublic | None:
    """Lineage for a caller: scenes not eligible for search are hidden unless `show_all` (admin scope)."""

    def eligible(sid: str) -> bool:
        return snap.scene_eligible(sid, "search", now)

    found = lineage(snap, scene_id, (lambda _: True) if show_all else eligible)
    if found is None:
        return None

    def node(item: LineageNode) -> LineageNodePublic:
        return LineageNodePublic(
            scene_id=item.scene_id, parent_id=item.parent_id, depth=item.depth, eligible=eligible(item.scene_id)
        )

    visible = None if show_all else snap.eligible("search", now)
    row = snap.row[scene_id]
    family = family_of(snap, family_table(snap, visible), row)
    return LineagePublic(
        scene_id=scene_id,
        root=found.root,
        ancestors=[node(n) for n in found.ancestors],
        descendants=[node(n) for n in found.descendants],
        credit=credit_chain(snap, row, visible),
        family=FamilyPublic.model_validate(family.to_dict()) if family else None,
    )


def stats_public(snap: Snapshot, text_encoder: str, clip_status: str, visual: bool) -> StatsPublic:
    return StatsPublic(
        scenes=snap.scene_count,
        shots=sum(len(shots) for shots in snap.shots.values()),
        ads=len(snap.ads),
        consents=len(snap.consents),
        families=snap.family_count,
        remixes=sum(
            1 for parent, alive in zip(snap.columns[SceneCol.PARENT], snap.alive, strict=True) if parent and alive
        ),
        text_encoder=text_encoder,
        visual_channel=visual,
        clip_status=clip_status,
        index_versions=dict(snap.versions),
        updated_at=snap.manifest.updated_at,
    )
