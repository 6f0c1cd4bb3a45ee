"""An immutable, in-memory view of one index version: scene metadata, lineage, shots, consents, ads and ANN layers.

Searches read one snapshot from start to end, so a batch that lands meanwhile is never half-seen; the engine
swaps in a new snapshot when the LanceDB versions move (`Snapshot.load` rebuilds stale FAISS layers).
Structured slots are held as integer codes and multi-hot matrices so slot agreement and filters are numpy work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from indexer import ann
from indexer.schema import ADS, CONSENTS, SCENES, SHOTS, AdCol, ConsentCol, SceneCol, ShotCol
from indexer.store import Manifest, Store, to_matrix
from indexer.vocab import Vocabulary
from search.consent import ConsentState, is_eligible


@dataclass(frozen=True)
class Shot:
    index: int
    start_s: float | None
    end_s: float | None
    thumb_path: str | None
    media_path: str


@dataclass(frozen=True)
class AdEntry:
    ad_id: str
    skus: frozenset[str]
    categories: frozenset[str]
    target_tones: frozenset[str]
    bid_cpm: float
    creatives: tuple[str, ...]
    record: dict[str, Any]


@dataclass
class Codes:
    """One single-valued slot as integer codes (-1 = unknown) over a fixed label list."""

    labels: list[str]
    codes: np.ndarray

    @classmethod
    def build(cls, values: list[str | None], labels: list[str]) -> Codes:
        labels = list(dict.fromkeys([*labels, *sorted({v for v in values if v and v not in labels})]))
        index = {name: i for i, name in enumerate(labels)}
        return cls(labels, np.array([index.get(v, -1) if v else -1 for v in values], dtype=np.int32))

    def code(self, value: str | None) -> int:
        return self.labels.index(value) if value in self.labels else -2  # -2 never matches


@dataclass
class MultiHot:
    labels: list[str]
    matrix: np.ndarray  # rows x labels, bool

    @classmethod
    def build(cls, values: list[list[str]], labels: list[str]) -> MultiHot:
        labels = list(dict.fromkeys([*labels, *sorted({v for row in values for v in row if v not in labels})]))
        index = {name: i for i, name in enumerate(labels)}
        matrix = np.zeros((len(values), len(labels)), dtype=bool)
        for r, row in enumerate(values):
            matrix[r, [index[v] for v in row]] = True
        return cls(labels, matrix)

    def column(self, value: str) -> np.ndarray:
        if value not in self.labels:
            return np.zeros(len(self.matrix), dtype=bool)
        return self.matrix[:, self.labels.index(value)]


@dataclass
class Snapshot:
    path: Path
    manifest: Manifest
    versions: dict[str, int]
    ids: list[str]
    row: dict[str, int]
    columns: dict[str, list[Any]]  # display columns by SceneCol name
    setting: Codes
    time_of_day: Codes
    weather: Codes
    tones: MultiHot
    categories: MultiHot
    brands: MultiHot
    sku_rows: dict[str, np.ndarray]
    products: dict[str, dict[str, Any]]
    family: np.ndarray  # row -> row of its lineage root
    cameo_rows: np.ndarray  # rows that show at least one persona
    created: np.ndarray  # datetime64[us], NaT when unknown
    dwell: np.ndarray
    text_vecs: np.ndarray
    text_ann: ann.AnnIndex
    clip_ann: ann.AnnIndex | None
    clip_rows: np.ndarray  # clip ANN position -> scene row
    shots: dict[str, list[Shot]]
    consents: dict[str, ConsentState]
    ads: list[AdEntry]
    ad_vecs: np.ndarray
    family_members: dict[int, list[int]] = field(default_factory=dict)
    scenes_table: Any = None  # LanceDB scenes table checked out at `versions` (full-text search reads it)
    ads_table: Any = None
    shot_vecs: np.ndarray | None = None  # clip ANN position -> shot vector
    row_shots: dict[int, list[int]] = field(default_factory=dict)  # scene row -> clip ANN positions
    derived: dict[str, Any] = field(default_factory=dict)  # views built lazily from this version (trust, lineage)

    def __len__(self) -> int:
        return len(self.ids)

    def eligible(self, use: str, now: datetime) -> np.ndarray:
        """Boolean mask of rows whose cameo consents cover `use` at `now`."""
        mask = np.ones(len(self.ids), dtype=bool)
        cameos = self.columns[SceneCol.CAMEOS]
        for r in self.cameo_rows:
            mask[r] = is_eligible(cameos[r], use, self.consents, now)
        return mask

    @cached_property
    def children(self) -> dict[str, list[str]]:
        """Scene id -> ids of its direct remixes, built once per snapshot."""
        out: dict[str, list[str]] = {}
        for sid, parent in zip(self.ids, self.columns[SceneCol.PARENT], strict=True):
            if parent:
                out.setdefault(parent, []).append(sid)
        return out

    def scene_fields(self, row: int) -> dict[str, Any]:
        """The display fields of one scene, shared by search results and catalog reads."""
        cols = self.columns
        return {
            "scene_id": self.ids[row],
            "prompt": cols[SceneCol.PROMPT][row],
            "caption": cols[SceneCol.CAPTION][row],
            "setting": cols[SceneCol.SETTING][row],
            "time_of_day": cols[SceneCol.TIME][row],
            "weather": cols[SceneCol.WEATHER][row],
            "tones": list(cols[SceneCol.TONES][row] or []),
            "categories": list(cols[SceneCol.CATEGORIES][row] or []),
            "skus": list(cols[SceneCol.SKUS][row] or []),
            "parent_id": cols[SceneCol.PARENT][row],
            "parent_missing": bool(cols[SceneCol.PARENT][row]) and cols[SceneCol.PARENT][row] not in self.row,
            "family_id": self.ids[int(self.family[row])],
        }

    def scene_eligible(self, scene_id: str, use: str, now: datetime) -> bool:
        r = self.row.get(scene_id)
        return r is not None and is_eligible(self.columns[SceneCol.CAMEOS][r], use, self.consents, now)

    @classmethod
    def load(cls, store: Store, vocab: Vocabulary, attempts: int = 3) -> Snapshot:
        """Load one consistent version; if a writer moved LanceDB meanwhile, load again."""
        for _ in range(attempts):
            versions = store.versions()
            snapshot = cls._load(store, vocab, versions)
            if store.versions() == versions:
                return snapshot
        raise RuntimeError(f"the index at {store.path} kept changing while loading; try again")

    @classmethod
    def _load(cls, store: Store, vocab: Vocabulary, versions: dict[str, int]) -> Snapshot:
        text_ann = ann.load_or_build(store, ann.SCENE_TEXT)
        assert text_ann is not None
        clip_ann = ann.load_or_build(store, ann.SHOT_CLIP)
        ids, cols, text_vecs = _scene_columns(store, text_ann.keys)
        row = {sid: i for i, sid in enumerate(ids)}
        family = _families(ids, cols[SceneCol.PARENT], row)
        members: dict[int, list[int]] = {}
        for r, root in enumerate(family):
            members.setdefault(int(root), []).append(r)
        clip_rows = np.array([row[ann.split_shot_key(k)[0]] for k in clip_ann.keys] if clip_ann else [], np.int64)
        row_shots: dict[int, list[int]] = {}
        for pos, r in enumerate(clip_rows):
            row_shots.setdefault(int(r), []).append(pos)
        ads, ad_vecs = _ads(store)
        labels = {slot: [item.name for item in vocab.by_slot[slot]] for slot in vocab.by_slot}
        return cls(
            path=store.path,
            manifest=store.manifest,
            versions=versions,
            scenes_table=_pinned(store, SCENES, versions),
            ads_table=_pinned(store, ADS, versions),
            ids=ids,
            row=row,
            columns=cols,
            setting=Codes.build(cols[SceneCol.SETTING], labels["setting"]),
            time_of_day=Codes.build(cols[SceneCol.TIME], labels["time_of_day"]),
            weather=Codes.build(cols[SceneCol.WEATHER], labels["weather"]),
            tones=MultiHot.build(cols[SceneCol.TONES], labels["tone"]),
            categories=MultiHot.build(cols[SceneCol.CATEGORIES], labels["category"]),
            brands=MultiHot.build([b or [] for b in cols[SceneCol.BRANDS]], []),
            sku_rows=_sku_rows(cols[SceneCol.SKUS]),
            products=_products(store),
            family=family,
            family_members=members,
            cameo_rows=np.array([r for r, c in enumerate(cols[SceneCol.CAMEOS]) if c], dtype=np.int64),
            created=np.array(
                [
                    np.datetime64(d.replace(tzinfo=None), "us") if d else np.datetime64("NaT")
                    for d in cols[SceneCol.CREATED]
                ]
            ),
            dwell=np.array([d or 0 for d in cols[SceneCol.DWELL]], dtype=np.float64),
            text_vecs=text_vecs,
            text_ann=text_ann,
            clip_ann=clip_ann,
            clip_rows=clip_rows,
            shot_vecs=clip_ann.index.reconstruct_n(0, len(clip_ann))
            if clip_ann is not None and len(clip_ann)
            else None,
            row_shots=row_shots,
            shots=_shots(store),
            consents=_consents(store),
            ads=ads,
            ad_vecs=ad_vecs,
        )


def _pinned(store: Store, name: str, versions: dict[str, int]) -> Any:
    """A table handle checked out at the snapshot's version (full-text search reads through it)."""
    table = store.table(name)
    table.checkout(versions[name])
    return table


def _scene_columns(store: Store, keys: list[str]) -> tuple[list[str], dict[str, list[Any]], np.ndarray]:
    """Scene ids, display/slot columns and text vectors, in the order of the text ANN positions."""
    skip = {SceneCol.RECORD, SceneCol.CLIP_VEC, SceneCol.DOC}
    table = store.columns(SCENES, [c for c in store.table(SCENES).schema.names if c not in skip])
    order = {sid: i for i, sid in enumerate(table.column(SceneCol.ID).to_pylist())}
    table = table.take(np.array([order[k] for k in keys], dtype=np.int64)) if keys else table
    cols = {name: table.column(name).to_pylist() for name in table.column_names if name != SceneCol.TEXT_VEC}
    vecs = to_matrix(table.column(SceneCol.TEXT_VEC), store.manifest.text_dim)
    return [str(s) for s in cols[SceneCol.ID]], cols, vecs


def _families(ids: list[str], parents: list[str | None], row: dict[str, int]) -> np.ndarray:
    """Row of each scene's lineage root (a missing parent ends the chain)."""
    root = np.arange(len(ids), dtype=np.int64)
    for r in range(len(ids)):
        seen, node = {r}, r
        while (parent := parents[node]) is not None and parent in row and row[parent] not in seen:
            node = row[parent]
            seen.add(node)
        root[r] = node
    return root


def _sku_rows(skus: list[list[str]]) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = {}
    for r, values in enumerate(skus):
        for sku in values or []:
            rows.setdefault(sku, []).append(r)
    return {sku: np.array(r, dtype=np.int64) for sku, r in rows.items()}


def _products(store: Store) -> dict[str, dict[str, Any]]:
    """Product facts by sku, from the scene records (the catalog has no separate product file)."""
    products: dict[str, dict[str, Any]] = {}
    table = store.columns(SCENES, [SceneCol.RECORD], where=f"array_length({SceneCol.SKUS}) > 0")
    for raw in table.column(SceneCol.RECORD).to_pylist():
        for product in json.loads(raw).get("products", []):
            products.setdefault(product["sku"], product)
    return products


def _shots(store: Store) -> dict[str, list[Shot]]:
    cols = [ShotCol.SCENE, ShotCol.INDEX, ShotCol.START, ShotCol.END, ShotCol.THUMB, ShotCol.MEDIA]
    table = store.columns(SHOTS, cols).to_pylist()
    shots: dict[str, list[Shot]] = {}
    for r in sorted(table, key=lambda r: (r[ShotCol.SCENE], r[ShotCol.INDEX])):
        shots.setdefault(r[ShotCol.SCENE], []).append(
            Shot(r[ShotCol.INDEX], r[ShotCol.START], r[ShotCol.END], r[ShotCol.THUMB], r[ShotCol.MEDIA])
        )
    return shots


def _consents(store: Store) -> dict[str, ConsentState]:
    rows = store.columns(
        CONSENTS, [ConsentCol.ID, ConsentCol.SCOPES, ConsentCol.EXPIRES, ConsentCol.REVOKED]
    ).to_pylist()
    return {
        r[ConsentCol.ID]: ConsentState(
            r[ConsentCol.ID], frozenset(r[ConsentCol.SCOPES] or []), r[ConsentCol.EXPIRES], r[ConsentCol.REVOKED]
        )
        for r in rows
    }


def _ads(store: Store) -> tuple[list[AdEntry], np.ndarray]:
    table = store.columns(
        ADS,
        [AdCol.ID, AdCol.SKUS, AdCol.CATEGORIES, AdCol.TONES, AdCol.BID, AdCol.CREATIVES, AdCol.RECORD, AdCol.TEXT_VEC],
    )
    ads = [
        AdEntry(
            r[AdCol.ID],
            frozenset(r[AdCol.SKUS] or []),
            frozenset(r[AdCol.CATEGORIES] or []),
            frozenset(r[AdCol.TONES] or []),
            float(r[AdCol.BID] or 0.0),
            tuple(r[AdCol.CREATIVES] or []),
            json.loads(r[AdCol.RECORD]),
        )
        for r in table.drop_columns([AdCol.TEXT_VEC]).to_pylist()
    ]
    return ads, to_matrix(table.column(AdCol.TEXT_VEC), store.manifest.text_dim)
