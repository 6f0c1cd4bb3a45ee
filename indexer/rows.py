"""Turning validated records into table rows (column names come from `indexer.schema`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer import media
from indexer.context import SceneContext
from indexer.encoders import ClipModel, normalise
from indexer.location import IndexLocation
from indexer.provenance import SceneProvenance
from indexer.schema import Ad, AdCol, Consent, ConsentCol, Scene, SceneCol, ShotCol


def _record_json(record: Any) -> str:
    return json.dumps(record.model_dump(mode="json", exclude_none=True), ensure_ascii=False, sort_keys=True)


def source_json(source: dict[str, Any]) -> str:
    """The record exactly as the catalog gave it (keys sorted): what tolerant parsing changed stays readable."""
    return json.dumps(source, ensure_ascii=False, sort_keys=True)


def pool(vectors: Sequence[Any]) -> np.ndarray | None:
    """A scene's visual vector: the normalised mean of its shot vectors."""
    if not vectors:
        return None
    pooled: np.ndarray = normalise(np.mean(np.asarray(vectors, dtype=np.float32), axis=0, keepdims=True))[0]
    return pooled


def scene_row(
    scene: Scene, ctx: SceneContext, doc: str, clip_vec: np.ndarray | None, clip_dim: int | None
) -> dict[str, Any]:
    """Every scene column but the text vector (written column-wise by `Store.write_scenes`) and the source
    columns (`SceneCol.SOURCE`, `SceneCol.CONTENT_HASH`, set by the stream)."""
    engagement, provenance = scene.engagement, scene.provenance
    row: dict[str, Any] = {
        SceneCol.ID: scene.scene_id,
        SceneCol.PROMPT: scene.prompt,
        SceneCol.CAPTION: scene.caption,
        SceneCol.PARENT: scene.parent_id,
        SceneCol.CREATOR: scene.creator_id,
        SceneCol.CREATED: scene.created_at,
        SceneCol.SETTING: ctx.setting,
        SceneCol.TIME: ctx.time_of_day,
        SceneCol.WEATHER: ctx.weather,
        SceneCol.TONES: ctx.tones,
        SceneCol.CATEGORIES: ctx.categories,
        SceneCol.SKUS: [p.sku for p in scene.products],
        SceneCol.BRANDS: sorted({p.brand for p in scene.products if p.brand}),
        SceneCol.CAMEOS: list(scene.cameos),
        SceneCol.GENERATOR: provenance.generator if provenance else None,
        SceneCol.AI_DISCLOSURE: provenance.ai_disclosure if provenance else None,
        SceneCol.DISCLOSURE_LABEL: provenance.ai_disclosure_label if provenance else None,
        SceneCol.DWELL: engagement.dwell_ms if engagement else None,
        SceneCol.VIEWS: engagement.views if engagement else None,
        SceneCol.INFERRED: ctx.inferred,
        SceneCol.DOC: doc,
        SceneCol.RECORD: _record_json(scene),
    }
    if clip_dim:
        row[SceneCol.CLIP_VEC] = clip_vec.tolist() if clip_vec is not None else None
    return row


def provenance_columns(facts: SceneProvenance) -> dict[str, Any]:
    """The verified-provenance columns of a scene row."""
    return {
        SceneCol.C2PA_STATE: facts.state,
        SceneCol.C2PA_CODES: facts.codes,
        SceneCol.C2PA_GENERATOR: facts.claim_generator,
        SceneCol.C2PA_SOURCE_TYPE: facts.digital_source_type,
        SceneCol.C2PA_TRAINING: [f"{k}={v}" for k, v in sorted(facts.training_mining.items())],
        SceneCol.C2PA_BINDING: facts.binding_ok,
        SceneCol.C2PA_MEDIA: facts.media_json(),
        SceneCol.PROVENANCE_FLAGS: facts.mismatches,
    }


def shot_rows(
    scene_id: str,
    media_index: int,
    path: Path,
    shots: list[media.Shot],
    index_dir: Path | IndexLocation,
    thumbs_dir: str,
    clip: ClipModel | None,
    first_index: int = 0,
) -> list[dict[str, Any]]:
    """One row per shot; the thumbnail goes inside the index folder, the vector is the mean over keyframes."""
    out: list[dict[str, Any]] = []
    for shot in shots:
        thumb = Path(thumbs_dir) / scene_id / f"{media_index}-{shot.index}.jpg"
        _save_thumbnail(shot.keyframes[len(shot.keyframes) // 2], IndexLocation.of(index_dir), thumb.as_posix())
        row: dict[str, Any] = {
            ShotCol.SCENE: scene_id,
            ShotCol.INDEX: first_index + len(out),
            ShotCol.MEDIA: str(path),
            ShotCol.START: shot.start_s,
            ShotCol.END: shot.end_s,
            ShotCol.THUMB: thumb.as_posix(),
        }
        if clip is not None:
            vector = pool(list(clip.encode_images(list(shot.keyframes))))
            row[ShotCol.CLIP_VEC] = None if vector is None else vector.tolist()
        out.append(row)
    return out


def _save_thumbnail(image: Any, index: IndexLocation, relative: str) -> None:
    """Into the index folder (atomically), or as one object next to the tables on object storage."""
    if index.is_local:
        media.save_thumbnail(image, index.local_path / relative)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "thumb.jpg"
        media.save_thumbnail(image, local)
        index.write_bytes(relative, local.read_bytes())


def ad_row(ad: Ad, doc: str, text_vec: np.ndarray, source: dict[str, Any]) -> dict[str, Any]:
    return {
        AdCol.ID: ad.ad_id,
        AdCol.SKUS: list(ad.skus),
        AdCol.CATEGORIES: list(ad.categories),
        AdCol.TONES: list(ad.target_tones),
        AdCol.BID: ad.bid_cpm,
        AdCol.CREATIVES: list(ad.creative_scene_ids),
        AdCol.DOC: doc,
        AdCol.TEXT_VEC: np.asarray(text_vec, dtype=np.float32).tolist(),
        AdCol.RECORD: _record_json(ad),
        AdCol.SOURCE: source_json(source),
    }


def consent_row(consent: Consent, source: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        ConsentCol.ID: consent.persona_id,
        ConsentCol.SCOPES: list(consent.scopes),
        ConsentCol.EXPIRES: consent.expires_at,
        ConsentCol.REVOKED: consent.revoked_at,
        ConsentCol.RECORD: _record_json(consent),
        ConsentCol.SOURCE: source_json(source) if source is not None else _record_json(consent),
    }
