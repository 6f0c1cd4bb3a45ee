"""Ingest orchestration: validate, infer context, decode media, encode, write, derive the ANN layer.

Everything is validated and encoded before the first write; the writes to all tables happen in one
`Store.transaction()`, so a failed run leaves the index exactly as it was.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer import ann, catalog, media, rows
from indexer.catalog import Source, base_folder
from indexer.context import ad_text, doc_text, given_context, infer_contexts, scene_text
from indexer.encoders import (
    DEFAULT_CLIP_ARCH,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_TEXT_MODEL,
    ClipModel,
    ClipSpec,
    Encoder,
    load_clip,
    load_text_encoder,
)
from indexer.errors import CatalogError, MediaError, RecordError
from indexer.schema import ADS, CONSENTS, SCENES, SCHEMA_VERSION, Scene
from indexer.store import MANIFEST, ClipInfo, Manifest, Store, check_compatible, read_manifest
from indexer.vocab import Vocabulary

log = logging.getLogger(__name__)
THUMBS_DIR = "thumbs"


@dataclass(frozen=True)
class IndexOptions:
    db: Path
    strict: bool = False
    rebuild: bool = False
    text_model: str = DEFAULT_TEXT_MODEL
    clip_arch: str = DEFAULT_CLIP_ARCH
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED  # open_clip tag, or a checkpoint path
    use_clip: bool = True
    download_clip_weights: bool = False
    media_root: Path | None = None  # media must live under it; default: the scenes file's folder
    infer_context: bool = True  # off for plain text corpora (BEIR), where scene slots mean nothing
    limits: media.MediaLimits = field(default_factory=media.MediaLimits)
    workers: int = 2
    progress: bool = True


@dataclass
class IndexReport:
    db: Path
    scenes: int = 0
    ads: int = 0
    consents: int = 0
    shots: int = 0
    errors: list[RecordError] = field(default_factory=list)
    clip_status: str = "disabled"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds (read, encode, write, ann)
    ann: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


@dataclass
class Encoders:
    text: Encoder
    clip: ClipModel | None
    clip_info: ClipInfo | None


def load_encoders(options: IndexOptions) -> Encoders:
    """Load the text encoder and, when asked, CLIP; a CLIP failure is reported once and recorded."""
    text = load_text_encoder(options.text_model)
    if not options.use_clip:
        return Encoders(text, None, None)
    pretrained = options.clip_pretrained
    if Path(pretrained).is_file():
        pretrained = str(Path(pretrained).resolve())
    spec = ClipSpec(options.clip_arch, pretrained, options.download_clip_weights)
    model, status = load_clip(spec)
    if model is None:
        log.warning("%s; indexing the text channels only (no visual search)", status)
        return Encoders(text, None, ClipInfo(arch=spec.arch, pretrained=spec.pretrained, status=status))
    return Encoders(text, model, ClipInfo(spec.arch, spec.pretrained, model.id, model.dim, "loaded"))


def _open_existing(options: IndexOptions, enc: Encoders) -> Store | None:
    """The index at options.db if there is one, checked against the encoders; None for a new index."""
    if not (options.db / MANIFEST).is_file():
        return None
    existing = read_manifest(options.db)
    check_compatible(existing, options.db, enc.text.id, enc.clip.id if enc.clip else None)
    store = Store(options.db, existing)
    if enc.clip_info:
        store.manifest.clip = enc.clip_info  # keep the latest CLIP status
    return store


def index_catalog(
    options: IndexOptions,
    scenes_path: Source | None,
    ads_path: Source | None = None,
    consents_path: Source | None = None,
    encoders: Encoders | None = None,
) -> IndexReport:
    """Index a catalog into `options.db`; with `rebuild`, into a fresh folder swapped in at the end."""
    if options.rebuild and options.db.exists():
        staging = options.db.with_name(options.db.name + ".rebuild")
        shutil.rmtree(staging, ignore_errors=True)
        staged = IndexOptions(**{**options.__dict__, "db": staging, "rebuild": False})
        report = index_catalog(staged, scenes_path, ads_path, consents_path, encoders)
        retired = options.db.with_name(options.db.name + ".old")
        options.db.rename(retired)
        staging.rename(options.db)
        shutil.rmtree(retired, ignore_errors=True)
        report.db = options.db
        return report
    started = time.perf_counter()
    enc = encoders or load_encoders(options)
    existing = _open_existing(options, enc)
    report = IndexReport(db=options.db, clip_status=enc.clip_info.status if enc.clip_info else "disabled")
    with report.phase("read"):
        stored_ids = set(existing.ids(SCENES)) if existing else set()
        batch = _read_and_check(stored_ids, options, scenes_path, ads_path, consents_path)
    report.errors.extend(batch.errors)
    if options.strict and report.errors:
        raise CatalogError(
            f"{len(report.errors)} invalid record(s); nothing was written (first: {report.errors[0]})", report.errors
        )
    # only now, with the catalog validated, may a new index folder appear on disk
    store = existing or Store.create(options.db, Manifest(SCHEMA_VERSION, enc.text.id, enc.text.dim, enc.clip_info))
    with report.phase("media+encode"):
        scene_rows, shot_rows, media_errors = _scene_rows(store, options, enc, batch)
        ad_rows = _ad_rows(enc.text, batch.ads, options.progress)
    report.errors.extend(media_errors)
    if options.strict and media_errors:
        raise CatalogError(f"{len(media_errors)} media error(s); nothing was written (first: {media_errors[0]})")
    if not (scene_rows or ad_rows or batch.consents):
        report.seconds = time.perf_counter() - started
        return report  # nothing valid to write: leave every table version as it was
    with report.phase("write"), store.transaction():
        store.upsert(CONSENTS, [rows.consent_row(c) for c in batch.consents])
        store.upsert(SCENES, scene_rows)
        store.replace_shots([r["scene_id"] for r in scene_rows], shot_rows)
        store.upsert(ADS, ad_rows)
        store.rebuild_fts()
        store.save_manifest()
    with report.phase("ann"):
        report.ann = ann.sync(store)
    report.scenes, report.ads, report.consents = len(scene_rows), len(ad_rows), len(batch.consents)
    report.shots = len(shot_rows)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Batch:
    scenes: list[Scene] = field(default_factory=list)
    scenes_source: Source = Path("scenes.jsonl")
    scene_lines: dict[str, int] = field(default_factory=dict)
    media: dict[str, list[Path]] = field(default_factory=dict)
    ads: list[Any] = field(default_factory=list)
    consents: list[Any] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


def _read_and_check(
    stored_scenes: set[str],
    options: IndexOptions,
    scenes_path: Source | None,
    ads_path: Source | None,
    consents_path: Source | None,
) -> _Batch:
    batch = _Batch()
    if consents_path:
        consents = catalog.read_consents(consents_path)
        batch.consents, batch.errors = consents.records, batch.errors + consents.errors
    if scenes_path:
        scenes = catalog.read_scenes(scenes_path)
        catalog.check_parents(scenes, stored_scenes)
        batch.media = catalog.check_media(scenes, options.media_root or base_folder(scenes_path))
        batch.scenes, batch.errors = scenes.records, batch.errors + scenes.errors
        batch.scenes_source, batch.scene_lines = scenes_path, scenes.lines
    if ads_path:
        ads = catalog.read_ads(ads_path)
        catalog.check_creatives(ads, stored_scenes | {s.scene_id for s in batch.scenes})
        batch.ads, batch.errors = ads.records, batch.errors + ads.errors
    return batch


def _encode_texts(encoder: Encoder, texts: list[str], label: str, progress: bool, step: int = 256) -> np.ndarray:
    starts = tqdm(range(0, len(texts), step), desc=label, disable=not progress, unit="batch")
    chunks = [encoder.encode(texts[i : i + step]) for i in starts]
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), np.float32)


def _scene_rows(
    store: Store, options: IndexOptions, enc: Encoders, batch: _Batch
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[RecordError]]:
    shots, errors = _index_media(store, options, enc, batch)
    failed = {e.record_id for e in errors}
    scenes = [s for s in batch.scenes if s.scene_id not in failed]
    vectors = _encode_texts(enc.text, [scene_text(s) for s in scenes], "encode scenes", options.progress)
    if options.infer_context:
        contexts = infer_contexts(scenes, vectors, Vocabulary.load(), enc.text)
    else:
        contexts = [given_context(s) for s in scenes]
    clip_dim = enc.clip.dim if enc.clip else None
    scene_rows = []
    for scene, context, vector in zip(scenes, contexts, vectors, strict=True):
        pooled = rows.pool([s["clip_vec"] for s in shots.get(scene.scene_id, []) if s.get("clip_vec") is not None])
        scene_rows.append(rows.scene_row(scene, context, doc_text(scene, context), vector, pooled, clip_dim))
    shot_rows = [row for s in scenes for row in shots.get(s.scene_id, [])]
    return scene_rows, shot_rows, errors


def _index_media(
    store: Store, options: IndexOptions, enc: Encoders, batch: _Batch
) -> tuple[dict[str, list[dict[str, Any]]], list[RecordError]]:
    """Decode in worker threads while this thread encodes keyframes; one bad file skips its scene only."""
    jobs = [(s, i, path) for s in batch.scenes for i, path in enumerate(batch.media.get(s.scene_id, []))]
    shots: dict[str, list[dict[str, Any]]] = {}
    errors: list[RecordError] = []
    decoded = media.prefetch(jobs, lambda job: media.extract_shots(job[2], options.limits), workers=options.workers)
    for (scene, media_index, path), result in tqdm(
        decoded, total=len(jobs), desc="media", disable=not options.progress
    ):
        if isinstance(result, MediaError):
            line = batch.scene_lines[scene.scene_id]
            errors.append(RecordError(batch.scenes_source, line, f"media.{media_index}", result.reason, scene.scene_id))
            log.warning("skipping %s: %s", path, result.reason)
            continue
        scene_shots = shots.setdefault(scene.scene_id, [])
        scene_shots.extend(
            rows.shot_rows(
                scene.scene_id, media_index, path, result, store.path, THUMBS_DIR, enc.clip, len(scene_shots)
            )
        )
    return shots, errors


def _ad_rows(encoder: Encoder, ads: list[Any], progress: bool) -> list[dict[str, Any]]:
    texts = [ad_text(ad) for ad in ads]
    vectors = _encode_texts(encoder, texts, "encode ads", progress)
    return [rows.ad_row(ad, text, vec) for ad, text, vec in zip(ads, texts, vectors, strict=True)]


def delete_scenes(store: Store, scene_ids: list[str]) -> int:
    """Remove scenes and their shots; remixes of a deleted scene keep their (now dangling) parent_id."""
    present = set(store.ids(SCENES)) & set(scene_ids)
    with store.transaction():
        store.delete(SCENES, sorted(present))
        store.save_manifest()
    ann.sync(store)
    return len(present)


def put_consents(store: Store, consents: list[Any]) -> None:
    """Upsert consent records (a revocation is a record with revoked_at set); effective at the next search."""
    with store.transaction():
        store.upsert(CONSENTS, [rows.consent_row(c) for c in consents])
        store.save_manifest()
