"""Chunked, resumable scene ingest: read, check, encode and commit a chunk at a time.

Memory stays bounded by the chunk size whatever the catalog size, and a crash (even `kill -9`) loses at most
the chunk in flight. Each stored scene carries a content hash of its source record and media files; a re-run
skips scenes whose hash is already stored (no re-encoding) and replaces changed ones, so every scene ends up
stored exactly once. Within a chunk the shots are written before the scene rows: a scene row (with its hash)
exists only once its shots do, so a resumed run never skips a scene whose shots were lost.

A chunk goes through three steps, each a function the distributed path (`indexer/ray_ingest.py`) reuses:
`check_chunk` (cross-record checks and content hashes, in file order), `build_scenes` (media, encoders,
context inference and rows: per scene, so it can run anywhere) and `write_chunk` (one transaction).
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
from indexer.location import IndexLocation
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
class Encoding:
    """What turns checked scenes into rows: the models and the media settings of one process."""

    text: Encoder
    clip: ClipModel | None
    infer_context: bool = True
    limits: media.MediaLimits = field(default_factory=media.MediaLimits)
    workers: int = 2
    trust: provenance.TrustConfig = field(default_factory=provenance.TrustConfig)
    vocab: Vocabulary = field(default_factory=lambda: shared_vocabulary())


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

    def encoding(self) -> Encoding:
        return Encoding(self.text, self.clip, self.infer_context, self.limits, self.workers, self.trust, self.vocab)


SceneIngest = Callable[[SceneRun, Source, int, tqdm | None, Callable[[Loaded[Scene]], None] | None], None]
"""How a run's scenes get into the index: `ingest_scenes` below, or a distributed engine's."""


@dataclass
class Chunk:
    loaded: Loaded[Scene]
    media: dict[str, list[Path]]
    sources: dict[str, str]  # scene id -> the record as given, serialised once for the hash and the row
    hashes: dict[str, str]


@dataclass
class SceneBuild:
    """One scene encoded and turned into rows, not yet written; or the media error that skips it."""

    scene_id: str
    credentials: list[provenance.MediaCredential] = field(default_factory=list)  # files read, in order
    error: RecordError | None = None
    failed_path: Path | None = None  # the file behind `error`
    row: dict[str, Any] | None = None  # every scene column but the text vector
    vector: np.ndarray | None = None  # the text vector
    shots: list[dict[str, Any]] = field(default_factory=list)
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # index-relative path -> JPEG, when built elsewhere


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
        chunk = check_chunk(run, source, lines)
        if on_chunk:
            on_chunk(chunk.loaded)
        todo = pending(run, chunk, len(lines), progress)
        if todo:
            builds = build_scenes(
                run.encoding(), chunk, todo, run.store.location, progress.update if progress else None
            )
            write_chunk(run, chunk, builds, progress)


def digest_records(
    loaded: Loaded[Scene], resolved: dict[str, list[Path]], fingerprint: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(scene id -> the record as given, serialised; scene id -> content hash) of accepted records."""
    sources = {s.scene_id: rows.source_json(loaded.sources[s.scene_id]) for s in loaded.records}
    hashes = {
        s.scene_id: content_hash(sources[s.scene_id], resolved.get(s.scene_id, []), fingerprint) for s in loaded.records
    }
    return sources, hashes


def check_chunk(
    run: SceneRun,
    source: Source,
    lines: list[catalog.Parsed[Scene]],
    digests: dict[int, tuple[str, str]] | None = None,
) -> Chunk:
    """Duplicates, media paths and lineage across chunks, in file order; then each accepted record's source text
    and content hash (computed here, or taken from `digests`: line -> (source text, hash) computed elsewhere)."""
    loaded = catalog.collect(source, lines, run.seen)
    resolved = catalog.check_media(loaded, run.media_root)
    run.lineage.check(loaded)
    if digests is None:
        sources, hashes = digest_records(loaded, resolved, run.fingerprint)
    else:
        found = {s.scene_id: digests[loaded.lines[s.scene_id]] for s in loaded.records}
        sources = {sid: text for sid, (text, _) in found.items()}
        hashes = {sid: digest for sid, (_, digest) in found.items()}
    run.errors.extend(loaded.errors)
    return Chunk(loaded, resolved, sources, hashes)


def pending(run: SceneRun, chunk: Chunk, lines: int, progress: tqdm | None = None) -> list[Scene]:
    """The chunk's scenes to (re)write: those not stored with the same content hash; the rest are skipped."""
    todo = [s for s in chunk.loaded.records if run.stored_hashes.get(s.scene_id) != chunk.hashes[s.scene_id]]
    run.skipped += len(chunk.loaded.records) - len(todo)
    if progress is not None:
        progress.update(lines - len(todo))  # rejected and unchanged lines are done already
    return todo


def build_scenes(
    enc: Encoding,
    chunk: Chunk,
    scenes: list[Scene],
    index_dir: Path | IndexLocation,
    on_step: Callable[[int], None] | None = None,
) -> list[SceneBuild]:
    """Decode media, encode and infer, and turn each scene into rows (thumbnails are saved under `index_dir`).
    Every output depends on its own scene only, so any split of a chunk gives the same rows."""
    builds = _index_media(enc, chunk, scenes, index_dir)
    ok = [s for s in scenes if builds[s.scene_id].error is None]
    vectors = encode_texts(enc.text, [scene_text(s) for s in ok], on_step)
    contexts = infer_contexts(ok, vectors, enc.vocab, enc.text) if enc.infer_context else [given_context(s) for s in ok]
    clip_dim = enc.clip.dim if enc.clip else None
    for scene, context, vector in zip(ok, contexts, vectors, strict=True):
        sid = scene.scene_id
        build = builds[sid]
        pooled = rows.pool([s["clip_vec"] for s in build.shots if s.get("clip_vec") is not None])
        row = rows.scene_row(scene, context, doc_text(scene, context), pooled, clip_dim)
        row.update({SceneCol.SOURCE: chunk.sources[sid], SceneCol.CONTENT_HASH: chunk.hashes[sid]})
        row.update(rows.provenance_columns(provenance.scene_provenance(build.credentials, scene.provenance)))
        build.row, build.vector = row, vector
    return [builds[s.scene_id] for s in scenes]


def write_chunk(run: SceneRun, chunk: Chunk, builds: list[SceneBuild], progress: tqdm | None = None) -> None:
    """Commit a chunk's built scenes as one transaction (shots first: see the module docstring); a scene whose
    media failed is reported and skipped."""
    failed: set[str] = set()
    for build in builds:
        for credential in build.credentials:
            state = credential.state or provenance.NO_CREDENTIAL
            run.credentials[state] = run.credentials.get(state, 0) + 1
        if build.error is not None:
            run.errors.append(build.error)
            log.warning("skipping %s: %s", build.failed_path, build.error.reason)
            failed.add(build.scene_id)
    run.lineage.forget(failed)
    if progress is not None:
        progress.update(len(failed))
    kept = [b for b in builds if b.error is None]
    scene_rows = [b.row for b in kept if b.row is not None]
    kept_vectors = [b.vector for b in kept if b.vector is not None]
    vectors = np.stack(kept_vectors) if kept_vectors else np.zeros((0, run.text.dim), np.float32)
    shot_rows = [row for b in kept for row in b.shots]
    new = [i for i, b in enumerate(kept) if b.scene_id not in run.stored_hashes]
    with changelog.logged(run.store) as pending_change, run.store.transaction(pending_change.before):
        pending_change.scenes.update(b.scene_id for b in builds)
        run.store.replace_shots([b.scene_id for b in builds], shot_rows)  # shots first: see the module docstring
        run.store.write_scenes(scene_rows, vectors, new)
    run.store.save_manifest(pending_change.after)
    run.stored_hashes.update({b.scene_id: chunk.hashes[b.scene_id] for b in kept})
    run.written += len(scene_rows)
    run.shots += len(shot_rows)


def _index_media(
    enc: Encoding, chunk: Chunk, scenes: list[Scene], index_dir: Path | IndexLocation
) -> dict[str, SceneBuild]:
    """Decode in worker threads while this thread encodes keyframes and reads each file's Content Credentials
    (offline); one bad file skips its scene only."""
    jobs = [(s, i, path) for s in scenes for i, path in enumerate(chunk.media.get(s.scene_id, []))]
    builds = {s.scene_id: SceneBuild(s.scene_id) for s in scenes}
    decoded = media.prefetch(jobs, lambda job: media.extract_shots(job[2], enc.limits), workers=enc.workers)
    for (scene, media_index, path), result in decoded:
        build = builds[scene.scene_id]
        if build.error is not None:
            continue
        if isinstance(result, MediaError):
            line = chunk.loaded.lines[scene.scene_id]
            build.error = RecordError(chunk.loaded.source, line, f"media.{media_index}", result.reason, scene.scene_id)
            build.failed_path, build.shots = path, []
            continue
        build.credentials.append(provenance.read_credential(path, enc.trust))
        build.shots.extend(
            rows.shot_rows(scene.scene_id, media_index, path, result, index_dir, THUMBS_DIR, enc.clip, len(build.shots))
        )
    return builds


def media_root(source: Source, override: Path | None) -> Path:
    return override or base_folder(source)
