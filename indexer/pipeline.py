"""Ingest orchestration: consents, then scenes streamed in chunks (`indexer/stream.py`), then ads; the
full-text index and the FAISS layers are brought up to date once at the end of the run.

Each chunk is one `Store.transaction()` across tables, so a crash loses at most the chunk in flight and a
re-run resumes (unchanged scenes are skipped by content hash). `--strict` first checks the whole catalog
(`indexer/validation.py`) and then runs as one transaction: all or nothing.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from indexer import ann, catalog, changelog, lance_ann, media, provenance, rows, stream, validation
from indexer.catalog import Loaded, Source
from indexer.coerce import ChangeLog
from indexer.context import ad_text
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
from indexer.errors import CatalogError, RecordError, VisualIntentError
from indexer.lance_ann import LanceAnn
from indexer.location import IndexLocation
from indexer.schema import ADS, CONSENTS, SCENES, SCHEMA_VERSION, Ad
from indexer.store import MANIFEST, ClipInfo, Manifest, Store, check_compatible, read_manifest

log = logging.getLogger(__name__)
THUMBS_DIR = stream.THUMBS_DIR
DEFAULT_CHUNK = 5_000


@dataclass(frozen=True)
class IndexOptions:
    db: Path | IndexLocation  # a folder, or a prefix on object storage (indexer/location.py)
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
    chunk_size: int = DEFAULT_CHUNK  # scenes per transaction: bounds memory and what a crash can lose
    c2pa_trust_anchors: Path | None = None  # PEM roots; kept in the index for later runs (see provenance.py)
    c2pa_allowed_ekus: Path | None = None  # extended key uses accepted for signing certificates, one OID a line
    # A write to a serving index (the API): stored state is read only for the scenes the batch names, and the
    # ANN layers and full-text index are left to the next compaction (searches cover new rows through the delta).
    live: bool = False
    # "lance": the scene text base is the scenes table's IVF_PQ index, trained at the end of the run (offline,
    # not in a serving replica), and no FAISS text layer is built (see indexer.lance_ann)
    ann: str = "faiss"


@dataclass
class IndexReport:
    db: Path | IndexLocation
    scenes: int = 0  # scenes written (new or changed)
    unchanged: int = 0  # scenes skipped: already stored with the same content hash
    ads: int = 0
    consents: int = 0
    shots: int = 0
    errors: list[RecordError] = field(default_factory=list)
    changes: ChangeLog = field(default_factory=ChangeLog)
    lineage_gaps: dict[str, str] = field(default_factory=dict)  # scene id -> parent not in the index
    clip_status: str = "disabled"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    ann: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, int] = field(default_factory=dict)  # media files read this run, by C2PA state
    trust_anchors: bool = False  # whether credentials were checked against trust anchors

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    def add_changes(self, loaded: Loaded[Any]) -> None:
        self.changes.merge(loaded.change_log())

    def add_loaded(self, loaded: Loaded[Any]) -> None:
        self.add_changes(loaded)
        self.errors.extend(loaded.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": str(self.db),
            "written": {"scenes": self.scenes, "shots": self.shots, "ads": self.ads, "consents": self.consents},
            "unchanged_scenes": self.unchanged,
            "rejected": validation.rejected_summary(self.errors),
            "changes": self.changes.to_list(),
            "lineage_gaps": {"count": len(self.lineage_gaps), "examples": dict(list(self.lineage_gaps.items())[:5])},
            "errors": [str(e) for e in self.errors],
            "clip_status": self.clip_status,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "ann": self.ann,
            "credentials": {"by_state": self.credentials, "trust_anchors": self.trust_anchors},
        }


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
    location = IndexLocation.of(options.db)
    if not location.exists(MANIFEST):
        return None
    existing = read_manifest(location)
    check_compatible(existing, location, enc.text.id, enc.clip.id if enc.clip else None)
    location.require_conditional_put()
    store = Store(location, existing)
    if enc.clip_info:
        store.manifest.clip = enc.clip_info  # keep the latest CLIP status
    return store


def index_catalog(
    options: IndexOptions,
    scenes_path: Source | None,
    ads_path: Source | None = None,
    consents_path: Source | None = None,
    encoders: Encoders | None = None,
    scene_ingest: stream.SceneIngest | None = None,
) -> IndexReport:
    """Index a catalog into `options.db`; with `rebuild`, into a fresh folder swapped in at the end.
    `scene_ingest` replaces the in-process scene stream (`stream.ingest_scenes`), e.g. by the Ray engine's."""
    location = IndexLocation.of(options.db)
    if options.rebuild and (location.exists(MANIFEST) or (location.is_local and location.local_path.exists())):
        return _rebuild(options, scenes_path, ads_path, consents_path, encoders, scene_ingest)
    started = time.perf_counter()
    if options.strict:
        with _timed(None, "validate"):
            _check_strict(options, scenes_path, ads_path, consents_path)
    enc = encoders or load_encoders(options)
    existing = _open_existing(options, enc)
    report = IndexReport(db=options.db, clip_status=enc.clip_info.status if enc.clip_info else "disabled")
    with report.phase("read"):
        # every source is scanned first: a missing or non-UTF-8 file fails before any folder appears
        sizes = {str(p): catalog.scan(p) for p in (scenes_path, ads_path, consents_path) if p is not None}
        named = _named_ids(scenes_path) if options.live and scenes_path is not None else None
        hashes, parents = stream.stored_state(existing, named)
    store = existing or Store.create(location, Manifest(SCHEMA_VERSION, enc.text.id, enc.text.dim, enc.clip_info))
    store.lance_ann = LanceAnn() if options.ann == "lance" else None
    created = existing is None
    # the versions before the run: an empty new folder is removed, a bulk run whose tables moved rebuilds the
    # full-text index (a live write into an existing index needs neither: one LanceDB read fewer per write)
    versions = store.versions() if created or not options.live else None
    try:
        with store.transaction(versions) if options.strict else nullcontext():  # strict: all or nothing across chunks
            sources = (scenes_path, ads_path, consents_path)
            _ingest(store, options, enc, report, hashes, parents, sizes, sources, scene_ingest or stream.ingest_scenes)
    except BaseException:
        if created:
            location.delete_tree()
        raise
    if created and store.versions() == versions:
        location.delete_tree()  # nothing valid to write: no empty index left behind
        report.seconds = time.perf_counter() - started
        return report
    if not options.live:
        finish(store, report, rebuild_fts=store.versions() != versions or store.fts_stale())
    report.seconds = time.perf_counter() - started
    return report


def finish(store: Store, report: IndexReport | None = None, rebuild_fts: bool = True) -> None:
    """Bring the full-text index and the FAISS layers up to the LanceDB versions (end of a run, compaction)."""
    with _timed(report, "fts"):
        with changelog.logged(store):
            if rebuild_fts:  # a resumed run also finishes what a crash left
                store.rebuild_fts()
            store.index_keys()
        store.save_manifest()
    with _timed(report, "ann"):
        layers = ann.sync(store)
        if store.lance_ann is not None and (built := lance_ann.ensure(store)) is not None:
            layers["scenes_text_lance_ivf_pq"] = built
    if report is not None:
        report.ann = layers


def _named_ids(source: Source) -> list[str]:
    """Scene ids an in-memory batch names (a live write reads stored state for these only)."""
    items = source.items if isinstance(source, catalog.Inline) else []
    return [str(item["scene_id"]) for item in items if isinstance(item, dict) and item.get("scene_id")]


@contextmanager
def _timed(report: IndexReport | None, name: str) -> Iterator[None]:
    with report.phase(name) if report is not None else nullcontext():
        yield


def _rebuild(
    options: IndexOptions,
    scenes_path: Source | None,
    ads_path: Source | None,
    consents_path: Source | None,
    encoders: Encoders | None,
    scene_ingest: stream.SceneIngest | None,
) -> IndexReport:
    if not IndexLocation.of(options.db).is_local:
        raise VisualIntentError(
            f"--rebuild swaps folders by renaming, which object storage cannot do; index into a new prefix "
            f"instead of {options.db} and point `serve --db` at it"
        )
    db = IndexLocation.of(options.db).local_path
    staging = db.with_name(db.name + ".rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    staged = replace(options, db=staging, rebuild=False)
    kept_anchors = db / provenance.ANCHORS_FILE
    if options.c2pa_trust_anchors is None and kept_anchors.is_file():  # a rebuild keeps the index's trust
        staged = replace(staged, c2pa_trust_anchors=kept_anchors)
    report = index_catalog(staged, scenes_path, ads_path, consents_path, encoders, scene_ingest)
    retired = db.with_name(db.name + ".old")
    db.rename(retired)
    staging.rename(db)
    shutil.rmtree(retired, ignore_errors=True)
    report.db = options.db
    return report


def _check_strict(
    options: IndexOptions, scenes_path: Source | None, ads_path: Source | None, consents_path: Source | None
) -> None:
    """--strict: the whole catalog is checked before anything is encoded or written."""
    location = IndexLocation.of(options.db)
    stored = set(Store.open(location).ids(SCENES)) if location.exists(MANIFEST) else set()
    result = validation.validate_catalog(scenes_path, ads_path, consents_path, stored, options.media_root, strict=True)
    if result.errors:
        raise CatalogError(
            f"{len(result.errors)} invalid record(s); nothing was written (first: {result.errors[0]})", result.errors
        )


def _ingest(
    store: Store,
    options: IndexOptions,
    enc: Encoders,
    report: IndexReport,
    hashes: dict[str, str],
    parents: dict[str, str],
    sizes: dict[str, int],
    sources: tuple[Source | None, Source | None, Source | None],
    ingest_scenes: stream.SceneIngest,
) -> None:
    scenes_path, ads_path, consents_path = sources
    lineage = catalog.Lineage(parents, set(hashes))
    if consents_path:
        with report.phase("consents"):
            consents = catalog.read_consents(consents_path)
            report.add_loaded(consents)
            with changelog.logged(store) as pending:
                pending.consents.update(c.persona_id for c in consents.records)
                store.upsert(CONSENTS, [rows.consent_row(c, consents.sources[c.persona_id]) for c in consents.records])
            report.consents = len(consents.records)
    if scenes_path:
        trust = provenance.trust_for_index(store.location, options.c2pa_trust_anchors, options.c2pa_allowed_ekus)
        run = stream.SceneRun(
            store=store,
            text=enc.text,
            clip=enc.clip,
            media_root=stream.media_root(scenes_path, options.media_root),
            fingerprint=f"{_fingerprint(options, enc)}|c2pa={trust.fingerprint}",
            lineage=lineage,
            stored_hashes=hashes,
            infer_context=options.infer_context,
            limits=options.limits,
            workers=options.workers,
            trust=trust,
        )
        bar = tqdm(total=sizes.get(str(scenes_path)), desc="scenes", unit="rows", disable=not options.progress)
        with report.phase("scenes"), bar:
            ingest_scenes(run, scenes_path, options.chunk_size, bar, report.add_changes)
        report.scenes, report.shots, report.unchanged = run.written, run.shots, run.skipped
        report.credentials, report.trust_anchors = run.credentials, trust.anchors is not None
        report.errors.extend(run.errors)
        report.lineage_gaps = lineage.gaps()
        if options.strict and report.errors:  # media that failed to decode: roll the whole run back
            raise CatalogError(f"{len(report.errors)} media error(s); nothing was written (first: {report.errors[0]})")
    if ads_path:
        with report.phase("ads"):
            _ingest_ads(store, enc.text, ads_path, lineage.known, options.chunk_size, report)


def _fingerprint(options: IndexOptions, enc: Encoders) -> str:
    return f"{enc.text.id}|{enc.clip.id if enc.clip else '-'}|infer={options.infer_context}"


def _ingest_ads(
    store: Store, encoder: Encoder, source: Source, scene_ids: set[str], chunk_size: int, report: IndexReport
) -> None:
    seen: dict[str, int] = {}
    for lines in stream.chunked(catalog.iter_records(source, Ad), chunk_size):
        ads = catalog.collect(source, lines, seen)
        catalog.check_creatives(ads, scene_ids)
        report.add_loaded(ads)
        texts = [ad_text(ad) for ad in ads.records]
        vectors = stream.encode_texts(encoder, texts)
        with changelog.logged(store) as pending:
            pending.ads = True
            store.upsert(
                ADS,
                [
                    rows.ad_row(ad, text, vec, ads.sources[ad.ad_id])
                    for ad, text, vec in zip(ads.records, texts, vectors, strict=True)
                ],
            )
        report.ads += len(ads.records)


def delete_scenes(store: Store, scene_ids: list[str]) -> int:
    """Remove scenes and their shots; remixes of a deleted scene keep their (now dangling) parent_id.
    The FAISS layers are not rebuilt: readers tombstone the rows (compaction drops them)."""
    present = set(stream.stored_state(store, scene_ids)[0]) & set(scene_ids)
    with changelog.logged(store) as pending, store.transaction(pending.before):
        pending.scenes.update(present)
        store.delete(SCENES, sorted(present))
    store.save_manifest(pending.after)
    return len(present)


def put_consents(store: Store, consents: list[Any]) -> None:
    """Upsert consent records (a revocation is a record with revoked_at set); effective at the next search."""
    with changelog.logged(store) as pending, store.transaction(pending.before):
        pending.consents.update(c.persona_id for c in consents)
        store.upsert(CONSENTS, [rows.consent_row(c) for c in consents])
    store.save_manifest(pending.after)
