"""Chunked, resumable scene ingest: read, check, encode and commit a chunk at a time.

Memory stays bounded by the chunk size whatever the catalog size, and a crash (even `kill -9`) loses at most
the chunk in flight. Each stored scene carries a content hash of its source record and media files; a re-run
skips scenes whose hash is already stored (no re-encoding) and replaces changed ones, so every scene ends up
stored exactly once. Within a chunk the shots are written before the scene rows: a scene row (with its hash)
exists only once its shots do, so a resumed run never skips a scene whose shots were lost.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from indexer import catalog, changelog, media, provenance, rows
from indexer.catalog import Loaded, Source, base_folder
from indexer.context import doc_text, given_context, infer_contexts, scene_text
from indexer.encoders import ClipModel, Encoder
from indexer.errors import MediaError, RecordError
from indexer.schema import SCENES, SCHEMA_VERSION, Scene, SceneCol
from indexer.store import Store, in_filter
from indexer.vocab import Vocabulary

log = logging.getLogger(__name__)
THUMBS_DIR = "thumbs"
ENCODE_STEP = 256  # texts per encoder call: large enough for batching, small enough for a lively progress bar
T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def content_hash(source_text: str, media_paths: list[Path], fingerprint: str) -> str:
    """Of the record as given (`rows.source_json`, the text stored with the row), its media files (size and
    modification time) and what shapes the row (`fingerprint`: encoders, inference on or off, schema version)."""
    digest = hashlib.sha256(source_text.encode("utf-8"))
    for path in media_paths:
        stat = path.stat()
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    digest.update(f"\0{fingerprint}\0{SCHEMA_VERSION}".encode())
    return digest.hexdigest()[:32]


def encode_texts(encoder: Encoder, texts: list[str], on_step: Callable[[int], None] | None = None) -> np.ndarray:
    chunks = []
    for start in range(0, len(texts), ENCODE_STEP):
        chunks.append(encoder.encode(texts[start : start + ENCODE_STEP]))
        if on_step:
            on_step(len(chunks[-1]))
    return np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), np.float32)


@functools.cache
def shared_vocabulary() -> Vocabulary:
    """One vocabulary per process: its label vectors are encoded once, not once per write."""
    return Vocabulary.load()


@dataclass
class SceneRun:
    """What one ingest run knows across its chunks."""

    store: Store
    text: Encoder
    clip: ClipModel | None
    media_root: Path
    fingerprint: str
    lineage: catalog.Lineage
    stored_hashes: dict[str, str]  # scene id -> content hash already in the index
    infer_context: bool = True
    limits: media.MediaLimits = field(default_factory=media.MediaLimits)
    workers: int = 2
    vocab: Vocabulary = field(default_factory=lambda: shared_vocabulary())
    trust: provenance.TrustConfig = field(default_factory=provenance.TrustConfig)
    seen: dict[str, int] = field(default_factory=dict)  # id -> first line in this file (duplicates)
    written: int = 0
    shots: int = 0
    skipped: int = 0
    errors: list[RecordError] = field(default_factory=list)
    credentials: dict[str, int] = field(default_factory=dict)  # media files read this run, by C2PA state


@dataclass
class _Chunk:
    loaded: Loaded[Scene]
    media: dict[str, list[Path]]
    sources: dict[str, str]  # scene id -> the record as given, serialised once for the hash and the row
    hashes: dict[str, str]


def stored_state(store: Store | None, ids: Iterable[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(scene id -> content hash, scene id -> parent id) of the scenes already indexed: all of them, or (a live
    write) only those named in `ids` and their stored ancestors, so a small write reads a small part."""
    if store is None or not store.count(SCENES):
        return {}, {}
    cols = [SceneCol.ID, SceneCol.CONTENT_HASH, SceneCol.PARENT]
    if ids is None:
        tables = [store.columns(SCENES, cols)]
    else:
        tables, todo, seen = [], sorted(set(ids)), set()
        while todo:  # the ancestors too: the cycle check walks them
            seen.update(todo)
            found = store.columns(SCENES, cols, where=in_filter(SceneCol.ID, todo))
            tables.append(found)
            todo = sorted({p for p in found.column(SceneCol.PARENT).to_pylist() if p and p not in seen})
    hashes: dict[str, str] = {}
    parents: dict[str, str] = {}
    for table in tables:
        found_ids = table.column(SceneCol.ID).to_pylist()
        hashes.update(zip(found_ids, table.column(SceneCol.CONTENT_HASH).to_pylist(), strict=True))
        parents.update({s: p for s, p in zip(found_ids, table.column(SceneCol.PARENT).to_pylist(), strict=True) if p})
    return hashes, parents


def ingest_scenes(
    run: SceneRun,
    source: Source,
    chunk_size: int,
    progress: tqdm | None = None,
    on_chunk: Callable[[Loaded[Scene]], None] | None = None,
) -> None:
    """Stream `source` into the index a chunk (one transaction) at a time."""
    for lines in chunked(catalog.iter_records(source, Scene), chunk_size):
        chunk = _check(run, source, lines)
        if on_chunk:
            on_chunk(chunk.loaded)
        todo = [s for s in chunk.loaded.records if run.stored_hashes.get(s.scene_id) != chunk.hashes[s.scene_id]]
        run.skipped += len(chunk.loaded.records) - len(todo)
        if progress is not None:
            progress.update(len(lines) - len(todo))  # rejected and unchanged lines are done already
        _write(run, chunk, todo, progress)


def _check(run: SceneRun, source: Source, lines: list[catalog.Parsed[Scene]]) -> _Chunk:
    loaded = catalog.collect(source, lines, run.seen)
    resolved = catalog.check_media(loaded, run.media_root)
    run.lineage.check(loaded)
    sources = {s.scene_id: rows.source_json(loaded.sources[s.scene_id]) for s in loaded.records}
    hashes = {
        s.scene_id: content_hash(sources[s.scene_id], resolved.get(s.scene_id, []), run.fingerprint)
        for s in loaded.records
    }
    run.errors.extend(loaded.errors)
    return _Chunk(loaded, resolved, sources, hashes)


def _write(run: SceneRun, chunk: _Chunk, todo: list[Scene], progress: tqdm | None) -> None:
    if not todo:
        return
    shots, credentials, media_errors = _index_media(run, chunk, todo)
    run.errors.extend(media_errors)
    failed = {e.record_id for e in media_errors if e.record_id is not None}
    scenes = [s for s in todo if s.scene_id not in failed]
    run.lineage.forget(failed)
    if progress is not None:
        progress.update(len(failed))
    vectors = encode_texts(run.text, [scene_text(s) for s in scenes], progress.update if progress else None)
    if run.infer_context:
        contexts = infer_contexts(scenes, vectors, run.vocab, run.text)
    else:
        contexts = [given_context(s) for s in scenes]
    clip_dim = run.clip.dim if run.clip else None
    scene_rows = []
    for scene, context in zip(scenes, contexts, strict=True):
        pooled = rows.pool([s["clip_vec"] for s in shots.get(scene.scene_id, []) if s.get("clip_vec") is not None])
        row = rows.scene_row(scene, context, doc_text(scene, context), pooled, clip_dim)
        sid = scene.scene_id
        row.update({SceneCol.SOURCE: chunk.sources[sid], SceneCol.CONTENT_HASH: chunk.hashes[sid]})
        row.update(rows.provenance_columns(provenance.scene_provenance(credentials.get(sid, []), scene.provenance)))
        scene_rows.append(row)
    shot_rows = [row for s in scenes for row in shots.get(s.scene_id, [])]
    new = [i for i, s in enumerate(scenes) if s.scene_id not in run.stored_hashes]
    with changelog.logged(run.store) as pending, run.store.transaction():
        pending.scenes.update(s.scene_id for s in todo)
        run.store.replace_shots([s.scene_id for s in todo], shot_rows)  # shots first: see the module docstring
        run.store.write_scenes(scene_rows, vectors, new)
    run.store.save_manifest()
    run.stored_hashes.update({s.scene_id: chunk.hashes[s.scene_id] for s in scenes})
    run.written += len(scene_rows)
    run.shots += len(shot_rows)


def _index_media(
    run: SceneRun, chunk: _Chunk, scenes: list[Scene]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[provenance.MediaCredential]], list[RecordError]]:
    """Decode in worker threads while this thread encodes keyframes and reads each file's Content Credentials
    (offline); one bad file skips its scene only."""
    jobs = [(s, i, path) for s in scenes for i, path in enumerate(chunk.media.get(s.scene_id, []))]
    shots: dict[str, list[dict[str, Any]]] = {}
    credentials: dict[str, list[provenance.MediaCredential]] = {}
    errors: list[RecordError] = []
    failed: set[str] = set()
    decoded = media.prefetch(jobs, lambda job: media.extract_shots(job[2], run.limits), workers=run.workers)
    for (scene, media_index, path), result in decoded:
        if scene.scene_id in failed:
            continue
        if isinstance(result, MediaError):
            line = chunk.loaded.lines[scene.scene_id]
            source = chunk.loaded.source
            errors.append(RecordError(source, line, f"media.{media_index}", result.reason, scene.scene_id))
            log.warning("skipping %s: %s", path, result.reason)
            failed.add(scene.scene_id)
            shots.pop(scene.scene_id, None)
            continue
        credential = provenance.read_credential(path, run.trust)
        credentials.setdefault(scene.scene_id, []).append(credential)
        state = credential.state or provenance.NO_CREDENTIAL
        run.credentials[state] = run.credentials.get(state, 0) + 1
        scene_shots = shots.setdefault(scene.scene_id, [])
        scene_shots.extend(
            rows.shot_rows(
                scene.scene_id, media_index, path, result, run.store.location, THUMBS_DIR, run.clip, len(scene_shots)
            )
        )
    return shots, credentials, errors


def media_root(source: Source, override: Path | None) -> Path:
    return override or base_folder(source)
