"""The facade the CLI, the API and the evaluation call: `Engine.open(db).search(text, ...)`.

One search: parse the intent frame, build the allowed mask (consent for the use at `now`, plus structured
filters), run the channels under that mask, fuse, apply negations and priors, collapse remix families,
optionally diversify, then attach best shots, explanations and ads.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexer import lance_ann, pipeline
from indexer.encoders import ClipModel, ClipSpec, Encoder, is_semantic, load_clip, load_text_encoder
from indexer.errors import IndexMismatchError
from indexer.lance_ann import LanceAnn
from indexer.location import IndexLocation
from indexer.schema import Consent
from indexer.store import ClipInfo, Store
from indexer.vocab import Vocabulary
from search import channels, evidence, rerank, trust
from search.ads import match_ads, rank_ads_by_text
from search.consent import ConsentState, now_utc
from search.explain import ad_hit, scene_hit
from search.filters import SceneFilters
from search.fusion import LEARNED, fuse
from search.intent import IntentFrame, IntentParser
from search.publisher import VERSION_WAIT_S, Publisher
from search.query_cache import CachedEncoder
from search.results import SearchResponse
from search.snapshot import Snapshot

log = logging.getLogger(__name__)

CHANNELS = ("dense", "fts", "clip", "slots")
ANN_BACKENDS = ("faiss", "lance")
# Tuned on the fixture query set (see README, "Relevance"); slot agreement leads because the frame is
# the most precise signal when the query names product and context.
DEFAULT_WEIGHTS = {"dense": 1.0, "fts": 0.5, "clip": 0.6, "slots": 1.5}


@dataclass(frozen=True)
class SearchOptions:
    channels: tuple[str, ...] = CHANNELS
    fusion: str = "weighted"
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    intent: bool = True  # parse the frame; off = the raw text goes to every channel, no slots or negations
    collapse: bool = True
    mmr_lambda: float | None = None  # e.g. 0.7 turns on MMR diversity
    dwell_weight: float = 0.0  # engagement prior; 0 = off
    negation: str = "exclude"
    depth: int = 200  # candidates per channel
    ads_k: int = 5
    require_credentials: bool = False  # only scenes and ad creatives with a verified C2PA credential


# Named variants for evaluation and experiments.
PRESETS: dict[str, SearchOptions] = {
    "dense": SearchOptions(channels=("dense",), intent=False, collapse=False),
    "fts": SearchOptions(channels=("fts",), intent=False, collapse=False),
    "clip": SearchOptions(channels=("clip",), intent=False, collapse=False),
    # slot evidence alone, over the dense and full-text candidates (their scores weigh nothing)
    "slots": SearchOptions(
        channels=("dense", "fts", "slots"), weights={"dense": 0.0, "fts": 0.0, "slots": 1.0}, collapse=False
    ),
    "fusion": SearchOptions(channels=("dense", "fts", "clip"), fusion="rrf", intent=False, collapse=False),
    "full": SearchOptions(collapse=False),
    "full+collapse": SearchOptions(),
}


@dataclass(frozen=True)
class Retrieval:
    """One query's channel results under one snapshot, before fusion."""

    snap: Snapshot
    frame: IntentFrame
    allowed: np.ndarray
    query_vec: np.ndarray
    clip_vec: np.ndarray | None
    results: list[channels.ChannelResult]
    now: datetime
    terms: list[evidence.SlotTerm]  # the frame's slot values matched against every row
    visible: np.ndarray  # eligible for the use by consent, before credential requirements and filters

    def matched_terms(self, rows: np.ndarray) -> dict[int, bytes] | None:
        """Which of the frame's slot terms each of `rows` matches, one comparable key per row (None when the
        frame asks nothing); sized by the rows asked about, not the catalog."""
        if not self.terms:
            return None
        matrix = np.stack([t.match[rows] for t in self.terms], axis=1)
        return {int(r): m.tobytes() for r, m in zip(rows, matrix, strict=True)}


class Engine:
    def __init__(self, store: Store, text: Encoder, clip: ClipModel | None, clip_status: str, saved_base: bool = True):
        self.store = store
        self.text = text
        self.clip = clip
        self.clip_status = clip_status
        self.vocab = Vocabulary.load()
        self.use_query_encoder(CachedEncoder(text))
        self.live = Publisher(store, self.vocab, saved_base)  # the serving snapshot and how it moves on

    def use_query_encoder(self, encoder: Encoder) -> None:
        """Encode queries (frame phrases and search text) through `encoder`, e.g. a cache over a batcher;
        `self.text` stays the plain model for document writes."""
        if encoder.id != self.text.id:
            raise IndexMismatchError(f"query encoder '{encoder.id}' is not the index's '{self.text.id}'")
        self.queries = encoder
        self.parser = IntentParser(self.vocab, encoder)

    @classmethod
    def open(
        cls,
        db: Path | IndexLocation,
        text: Encoder | None = None,
        clip: ClipModel | None = None,
        use_clip: bool = True,
        saved_base: bool = True,
        ann: str | LanceAnn = "faiss",
    ) -> Engine:
        """`saved_base=False` loads every layer from the live tables instead of the saved base plus the log.
        `ann`: the dense text base, "faiss" (an in-memory HNSW layer) or "lance" (the scenes table's IVF_PQ
        index, built here when missing; a `LanceAnn` sets its query parameters): see indexer.lance_ann."""
        store = Store.open(db)
        store.lance_ann = ann_choice(ann)
        if store.lance_ann is not None:
            lance_ann.ensure(store)
        manifest = store.manifest
        text = text or load_text_encoder(manifest.text_encoder)
        if text.id != manifest.text_encoder:
            raise IndexMismatchError(f"index at {db} needs text encoder '{manifest.text_encoder}', got '{text.id}'")
        clip, status = cls._clip_for(manifest.clip, clip, use_clip)
        return cls(store, text, clip, status, saved_base)

    @staticmethod
    def _clip_for(info: ClipInfo | None, clip: ClipModel | None, use_clip: bool) -> tuple[ClipModel | None, str]:
        """The CLIP model matching the index, or None with the reason said plainly."""
        if info is None or info.id is None:
            reason = info.status if info is not None else "not requested at index time"
            return None, f"no visual channel: index has no CLIP vectors ({reason})"
        if not use_clip:
            return None, "no visual channel: disabled for this session"
        if clip is None:
            clip, status = load_clip(ClipSpec(info.arch, info.pretrained))
            if clip is None:
                log.warning("%s; searching the text channels only", status)
                return None, f"no visual channel: {status}"
        if clip.id != info.id:
            raise IndexMismatchError(f"index needs CLIP '{info.id}', got '{clip.id}'")
        return clip, f"loaded {clip.id}"

    @property
    def text_encoder_status(self) -> str:
        if is_semantic(self.text.id):
            return self.text.id
        return f"{self.text.id}: NOT a semantic model (hashed bag of words, a stand-in for tests and benchmarks)"

    @property
    def snapshot(self) -> Snapshot:
        """The version searches read now (each request reads it once and keeps it)."""
        return self.live.snapshot

    @property
    def opened_from(self) -> str:
        return self.live.opened_from

    def refresh(self) -> bool:
        return self.live.refresh()

    def wait_for_version(self, version: int, timeout_s: float = VERSION_WAIT_S) -> Snapshot:
        return self.live.wait_for_version(version, timeout_s)

    def compact(self) -> Snapshot:
        return self.live.compact()

    def put_consents(self, consents: list[Consent]) -> None:
        """Commit consent records; a revocation is withheld from searches before the commit starts."""
        states = {c.persona_id: ConsentState.of(c) for c in consents}
        self.live.change_consents(states, lambda: pipeline.put_consents(self.store, consents))

    def parse(self, text: str, sku: str | None = None) -> IntentFrame:
        return self.parser.parse(text, sku, self.snapshot.products)

    def retrieve(
        self,
        text: str,
        sku: str | None = None,
        use: str = "search",
        options: SearchOptions | None = None,
        filters: SceneFilters | None = None,
        now: datetime | None = None,
        clip_query: np.ndarray | None = None,
        text_query: np.ndarray | None = None,
        exclude: Collection[str] = (),
    ) -> Retrieval:
        """The frame, the allowed mask and every channel's candidates for one query, before fusion (search uses
        it; so does learned-fusion training, which needs the same candidates the ranking will see).
        `clip_query`: a CLIP-space vector (e.g. an encoded reference image) used instead of the query text's CLIP
        encoding in the visual channel and for picking best shots; the text channels still use the text.
        `text_query`: likewise for the dense text channel and ad similarity (recommend by example).
        `exclude`: scene ids never returned (the examples of a recommendation)."""
        options = options or SearchOptions()
        snap = self.snapshot  # one consistent version for the whole request
        now = now or now_utc()
        frame = (
            self.parser.parse(text, sku, snap.products) if options.intent else IntentFrame(text, sku, search_text=text)
        )
        visible = snap.eligible(use, now)
        allowed = visible & trust.credentialed(snap) if options.require_credentials else visible.copy()
        if filters is not None:
            allowed &= filters.mask(snap)
        for scene_id in exclude:
            if scene_id in snap.row:
                allowed[snap.row[scene_id]] = False
        query_vec = (
            self.queries.encode([frame.search_text])
            if text_query is None
            else np.asarray(text_query, dtype=np.float32).reshape(1, -1)
        )
        clip_vec = None
        if self.clip and "clip" in options.channels:
            clip_vec = (
                self.clip.encode_texts([frame.search_text])
                if clip_query is None
                else np.asarray(clip_query, dtype=np.float32).reshape(1, -1)
            )
        terms = list(evidence.slot_terms(snap, frame)) if options.intent else []
        results = self._run_channels(snap, frame, options, allowed, query_vec, clip_vec)
        if "slots" in options.channels and options.intent:
            # slot agreement only re-ranks what retrieval found (plus exact sku matches): evidence, not a flood
            found = evidence.candidate_rows(snap, frame, [r.rows for r in results], allowed)
            results.append(channels.slots(terms, found))
        return Retrieval(snap, frame, allowed, query_vec, clip_vec, results, now, terms, visible)

    def search(
        self,
        text: str,
        sku: str | None = None,
        use: str = "search",
        k: int = 10,
        options: SearchOptions | None = None,
        filters: SceneFilters | None = None,
        now: datetime | None = None,
        clip_query: np.ndarray | None = None,
        text_query: np.ndarray | None = None,
        exclude: Collection[str] = (),
    ) -> SearchResponse:
        """One ranked page of scenes and ads; the query arguments are those of `retrieve`."""
        options = options or SearchOptions()
        found = self.retrieve(text, sku, use, options, filters, now, clip_query, text_query, exclude)
        snap, frame, results = found.snap, found.frame, found.results
        ranked = self.rank(found, options, k)
        top = ranked[:k]
        scenes = [scene_hit(snap, c, frame, results, found.clip_vec) for c in top]
        ads = (
            match_ads(
                snap,
                frame,
                found.query_vec[0],
                [c.row for c in top[:5]],
                found.now,
                options.ads_k,
                options.require_credentials,
            )
            if options.ads_k
            else []
        )
        ad_hits = [ad_hit(m) for m in ads]
        trust.annotate_scenes(snap, scenes, [c.row for c in top], use, found.visible)
        trust.annotate_ads(snap, ad_hits, [m.ad for m in ads])
        return SearchResponse(
            query=text,
            use=use,
            frame=frame.to_dict(),
            scenes=scenes,
            ads=ad_hits,
            channels=[r.name for r in results],
            fusion=options.fusion,
            clip_status=self.clip_status,
            index_versions=dict(snap.versions),
            text_encoder=self.text_encoder_status,
        )

    def rank(self, found: Retrieval, options: SearchOptions, k: int = 10) -> list[rerank.Candidate]:
        """Fuse, apply negations and the prior, collapse and diversify: every candidate, best first."""
        snap, frame = found.snap, found.frame
        fused = self._fuse(found, options)
        judged = (
            rerank.apply_negations(snap, frame, fused, options.negation)
            if options.intent
            else {r: (s, []) for r, s in fused.items()}
        )
        rows = np.array(list(judged), dtype=np.int64)
        prior = rerank.dwell_prior(snap, rows, options.dwell_weight)
        ranked = [
            rerank.Candidate(int(r), judged[int(r)][0] * float(p), notes=judged[int(r)][1])
            for r, p in zip(rows, prior, strict=True)
        ]
        ranked.sort(key=lambda c: (-c.score, snap.ids[c.row]))
        if options.collapse:
            ranked = rerank.collapse(snap, ranked, found.allowed, found.matched_terms(rows))
        if options.mmr_lambda is not None:
            ranked = rerank.mmr(snap, ranked, k, options.mmr_lambda)
        return ranked

    def _fuse(self, found: Retrieval, options: SearchOptions) -> dict[int, float]:
        if options.fusion == LEARNED:
            from search.ltr.model import learned_scores

            return learned_scores(found.snap, found.frame, found.results, found.terms, found.allowed)
        return fuse(options.fusion, found.results, options.weights)

    def rank_ads(
        self, text: str, sku: str | None = None, variant: str = "intent", k: int = 10, now: datetime | None = None
    ) -> list[tuple[str, float]]:
        """Ads for a query under one ranking variant: keyword, dense, hybrid or intent (the full matcher)."""
        snap, now = self.snapshot, now or now_utc()
        if variant == "intent":
            response = self.search(text, sku=sku, use="ads", k=5, options=SearchOptions(ads_k=k), now=now)
            return [(ad.ad_id, ad.score) for ad in response.ads]
        query_vec = self.queries.encode([text])[0]
        keyword = channels.ad_keyword_hits(snap, text, limit=max(k, len(snap.ads)))
        return rank_ads_by_text(snap, keyword, query_vec, variant, now, k)

    def _run_channels(
        self,
        snap: Snapshot,
        frame: IntentFrame,
        options: SearchOptions,
        allowed: np.ndarray,
        query_vec: np.ndarray,
        clip_vec: np.ndarray | None,
    ) -> list[channels.ChannelResult]:
        out = []
        for name in options.channels:
            if name == "dense":
                out.append(channels.dense_text(snap, query_vec, allowed, options.depth))
            elif name == "fts":
                out.append(channels.full_text(snap, frame.search_text, allowed, options.depth))
            elif name == "clip" and clip_vec is not None:
                out.append(channels.clip_text(snap, clip_vec, allowed, options.depth))
            elif name not in CHANNELS:
                raise ValueError(f"unknown channel '{name}' (choose {', '.join(CHANNELS)})")
        return out


def ann_choice(ann: str | LanceAnn) -> LanceAnn | None:
    """The `ann` option of `Engine.open`: None for FAISS, the Lance query parameters otherwise."""
    if isinstance(ann, LanceAnn):
        return ann
    if ann not in ANN_BACKENDS:
        raise ValueError(f"unknown ANN backend '{ann}' (choose {', '.join(ANN_BACKENDS)})")
    return LanceAnn() if ann == "lance" else None


def with_overrides(base: SearchOptions, **changes: Any) -> SearchOptions:
    """A copy of `base` with some options changed (CLI flags, API fields, experiment parameters)."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})
