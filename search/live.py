"""Building snapshots: the base from the whole index (`load_base`), and the next one after a write (`apply`).

`apply` costs what the write touched: it re-reads the named scenes (a filtered LanceDB read at the new
version), tombstones their old rows, appends their current rows to the delta (vectors, columns, slots, shots,
lineage, consent masks), and shares everything else with the previous snapshot. A consent change re-reads the
small consent table and flips the bits of that persona's rows. Compaction (`search.compaction`) folds the
delta back into a new base.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer import ann, changelog
from indexer.changelog import Change
from indexer.schema import ADS, CONSENTS, SCENES, SHOTS, AdCol, ConsentCol, SceneCol, ShotCol
from indexer.store import Store, in_filter, to_matrix
from indexer.vocab import Vocabulary
from search import lance_vectors
from search.consent import ConsentState, now_utc
from search.consent_masks import ConsentMasks
from search.scene_rows import NOT_HELD, SceneRows
from search.segments import GrowingArray, GrowingList, Overlay
from search.snapshot import ROWWISE, AdEntry, Shot, ShotLayer, Snapshot, families, root_rows
from search.vectors import SegmentedVectors

READ_BATCH = 1000  # ids per filtered read
BASE_OBJECT = f"{ann.ANN_DIR}/base.json"  # the table versions and log position of the last base loaded

log = logging.getLogger(__name__)


def load_base(store: Store, vocab: Vocabulary, attempts: int = 3) -> Snapshot:
    """Load the tables as they are now as a new base (writes may go on meanwhile: every read is pinned).
    The versions it was loaded at are saved next to the FAISS files (`open_base` starts from them)."""
    for _ in range(attempts):
        started = time.time_ns()
        versions = store.versions()
        if store.versions() != versions:
            continue  # a commit landed between two tables' version reads
        try:
            snapshot = _load(store, vocab, versions)  # every read pinned at `versions`: writes may go on
        except _MovedError:
            continue
        _save_base(store, versions, started)
        return snapshot
    raise RuntimeError(f"the index at {store.location} kept changing while loading; try again")


def open_base(store: Store, vocab: Vocabulary) -> tuple[Snapshot, int, str]:
    """The snapshot to serve at start-up, the write-log position it reflects, and how it was loaded.

    After live writes the saved FAISS layers are older than the tables. Rather than rebuild them (minutes at
    1M scenes), load the saved base at the versions it was built at and apply the logged writes since, as a
    running engine would have. Anything the log does not cover (a gap, a bulk write, versions removed by
    clean-up) means a full load, which rebuilds the layers."""
    started = time.time_ns()
    saved = _saved_base(store)
    if saved is not None:
        versions, seq = saved
        try:
            base = _load(store, vocab, versions, saved_layers=True)
            live_versions = store.versions()
            change = changelog.covering(changelog.since(store, seq), versions, live_versions)
            if change is not None and not change.bulk:
                if live_versions == versions:
                    return base, started, "saved base"
                return apply(base, store, change, live_versions), started, f"saved base + {_describe(change)}"
        except _MovedError:
            pass  # the FAISS files were replaced since the base was saved
        except Exception as exc:  # e.g. a table version removed by clean-up: the full load below is always right
            log.info("saved base at %s not usable (%s); loading the live tables", versions, exc)
    return load_base(store, vocab), started, "live tables"


def _describe(change: Change) -> str:
    parts = [f"{len(change.scenes)} scene(s)", f"{len(change.consents)} persona(s)", "ads" if change.ads else ""]
    return "logged writes: " + ", ".join(p for p in parts if p)


def _save_base(store: Store, versions: dict[str, int], seq: int) -> None:
    if _saved_base(store) != (versions, seq):
        store.location.write_json(BASE_OBJECT, {"versions": versions, "log_seq": seq})


def _saved_base(store: Store) -> tuple[dict[str, int], int] | None:
    data = store.location.read_json(BASE_OBJECT)
    if data is None:
        return None
    return {k: int(v) for k, v in data["versions"].items()}, int(data["log_seq"])


class _MovedError(Exception):
    """The saved FAISS layers reflect other versions than the ones being loaded."""


def _load(store: Store, vocab: Vocabulary, versions: dict[str, int], saved_layers: bool = False) -> Snapshot:
    """Every part read at `versions`; the FAISS layers are the saved ones (`saved_layers`), or brought up to
    the live tables."""
    text_ann = (  # `ann="lance"`: the scenes table pinned at the version, no FAISS text layer
        lance_vectors.load_base(store, versions[SCENES], store.lance_ann)
        if store.lance_ann
        else _layer(store, ann.SCENE_TEXT, versions[SCENES], saved_layers)
    )
    if text_ann is None or text_ann.version != versions[SCENES]:
        raise _MovedError
    table = _held_columns(store, text_ann.keys, versions[SCENES])
    ids = [str(s) for s in table.column(SceneCol.ID).to_pylist()]
    parents = table.column(SceneCol.PARENT).to_pylist()
    row = {sid: i for i, sid in enumerate(ids)}
    children: dict[str, list[str]] = {}
    for sid, parent in zip(ids, parents, strict=True):
        if parent:
            children.setdefault(parent, []).append(sid)
    labels = {slot: [item.name for item in vocab.by_slot[slot]] for slot in vocab.by_slot}
    parent_rows = np.array([row.get(p, -1) if p else -1 for p in parents], dtype=np.int64)
    sku_rows = _sku_rows(table.column(SceneCol.SKUS))
    shots, clip = _shot_layer(store, row, versions[SHOTS], saved_layers)
    ads, ad_vecs = _ads(store, versions)
    return Snapshot(
        path=store.location,
        manifest=store.manifest,
        versions=versions,
        scene_rows=SceneRows.build(table, labels),
        id_rows=GrowingList.of(ids),
        row=Overlay(row),
        dead=np.zeros(len(ids), dtype=bool),
        base_rows=len(ids),
        sku_rows=Overlay(sku_rows),
        products=Overlay(_products(store, versions[SCENES], ids, sku_rows)),
        family=root_rows(parent_rows),
        children_of=Overlay({p: tuple(c) for p, c in children.items()}),
        text=lance_vectors.text_layer(text_ann, row),
        clip=clip,
        shots=Overlay(shots),
        masks=ConsentMasks.build(table.column(SceneCol.CAMEOS).to_pylist(), _consents(store, versions)),
        ads=ads,
        ad_vecs=ad_vecs,
        scenes_table=_pinned(store, SCENES, versions),
        ads_table=_pinned(store, ADS, versions),
    )


def apply(
    snap: Snapshot, store: Store, change: Change, versions: dict[str, int], now: datetime | None = None
) -> Snapshot:
    """The snapshot after `change`, read at `versions`; `snap` is left as it was (searches may hold it)."""
    now = now or now_utc()
    out = _apply_scenes(snap, store, sorted(change.scenes), versions, now) if change.scenes else snap
    masks = out.masks
    if change.consents:
        masks = masks.with_consents(_consents(store, versions), change.consents, now)
    ads, ad_vecs = _ads(store, versions) if change.ads else (out.ads, out.ad_vecs)
    return replace(
        out,
        versions=versions,
        masks=masks,
        ads=ads,
        ad_vecs=ad_vecs,
        scenes_table=_pinned(store, SCENES, versions),
        ads_table=_pinned(store, ADS, versions) if change.ads else out.ads_table,
        derived={k: v for k, v in snap.derived.items() if k.startswith(ROWWISE)},
    )


def _apply_scenes(snap: Snapshot, store: Store, ids: list[str], versions: dict[str, int], now: datetime) -> Snapshot:
    table = _read(store, SCENES, versions, SceneCol.ID, ids, [*snap.scene_rows.base.column_names,
                                                                   SceneCol.TEXT_VEC, SceneCol.RECORD])  # fmt: skip
    written = [str(s) for s in table.column(SceneCol.ID).to_pylist()]
    start, end = len(snap), len(snap) + len(written)
    dead = np.concatenate([snap.dead, np.zeros(len(written), dtype=bool)])
    dead[[snap.row[s] for s in ids if s in snap.row]] = True
    changes: dict[str, int | None] = dict.fromkeys(ids)
    changes.update({s: start + i for i, s in enumerate(written)})
    row = snap.row.with_changes(changes)
    scene_rows = snap.scene_rows.extend(table)
    columns = scene_rows.columns()
    id_rows = snap.id_rows.extend(written)
    parents = table.column(SceneCol.PARENT).to_pylist()
    children: dict[str, tuple[str, ...]] = {}
    for s, p in zip(written, parents, strict=True):
        if p:  # several scenes of one batch may share a parent: each joins its children
            children[p] = (*children.get(p, snap.children_of.get(p, ())), s)
    children_of = snap.children_of.with_changes(children)
    family = np.concatenate([snap.family, np.arange(start, end, dtype=np.int64)])
    affected = set(range(start, end)) | _descendant_rows(ids, children_of, row, columns[SceneCol.PARENT])
    for r, root in families(columns[SceneCol.PARENT], row, sorted(affected)).items():
        family[r] = root
    sku_rows, products = _sku_changes(snap, table, start)
    shots, clip = (
        _shot_changes(snap, store, versions, ids, row)
        if versions[SHOTS] != snap.versions[SHOTS]
        else (snap.shots, snap.clip)  # no shot was written or deleted since `snap`
    )
    cameos = table.column(SceneCol.CAMEOS).to_pylist()
    return replace(
        snap,
        scene_rows=scene_rows,
        id_rows=id_rows,
        row=row,
        dead=dead,
        family=family,
        children_of=children_of,
        sku_rows=sku_rows,
        products=products,
        text=snap.text.extend(to_matrix(table.column(SceneCol.TEXT_VEC), store.manifest.text_dim)),
        clip=clip,
        shots=shots,
        masks=snap.masks.extended(columns[SceneCol.CAMEOS], cameos, now),
    )


def _descendant_rows(ids: Iterable[str], children: Overlay[str, tuple[str, ...]], row: Any, parents: Any) -> set[int]:
    """Live rows below the written scenes (their lineage root may have changed)."""
    out: set[int] = set()
    todo = list(ids)
    while todo:
        parent = todo.pop()
        for child in children.get(parent, ()):
            r = row.get(child)
            if r is not None and r not in out and parents[r] == parent:
                out.add(r)
                todo.append(child)
    return out


def _sku_changes(snap: Snapshot, table: pa.Table, start: int) -> tuple[Overlay[str, np.ndarray], Any]:
    added: dict[str, list[int]] = {}
    new_products: dict[str, dict[str, Any] | None] = {}
    for r, (skus, record) in enumerate(
        zip(table.column(SceneCol.SKUS).to_pylist(), table.column(SceneCol.RECORD).to_pylist(), strict=True), start
    ):
        for sku in skus or []:
            added.setdefault(sku, []).append(r)
        for product in json.loads(record).get("products", []) if skus else []:
            if product["sku"] not in snap.products and product["sku"] not in new_products:
                new_products[product["sku"]] = product
    empty = np.zeros(0, np.int64)
    sku_rows = snap.sku_rows.with_changes(
        {sku: np.concatenate([snap.sku_rows.get(sku, empty), np.array(r, np.int64)]) for sku, r in added.items()}
    )
    return sku_rows, snap.products.with_changes(new_products) if new_products else snap.products


def _shot_changes(
    snap: Snapshot, store: Store, versions: dict[str, int], ids: list[str], row: Overlay[str, int]
) -> tuple[Overlay[str, list[Shot]], ShotLayer | None]:
    cols = [ShotCol.SCENE, ShotCol.INDEX, ShotCol.START, ShotCol.END, ShotCol.THUMB, ShotCol.MEDIA]
    with_vectors = snap.clip is not None
    table = _read(store, SHOTS, versions, ShotCol.SCENE, ids, cols + ([ShotCol.CLIP_VEC] if with_vectors else []))
    listed = _shot_lists(table.select(cols).to_pylist())
    shots = snap.shots.with_changes({s: listed.get(s) for s in ids})
    if snap.clip is None:
        return shots, None
    table = table.filter(pa.compute.is_valid(table.column(ShotCol.CLIP_VEC)))
    scene_rows = np.array([row[s] for s in table.column(ShotCol.SCENE).to_pylist()], dtype=np.int64)
    first = len(snap.clip)
    positions: dict[int, list[int]] = {}
    for offset, r in enumerate(scene_rows):
        positions.setdefault(int(r), []).append(first + offset)
    clip = ShotLayer(
        vectors=snap.clip.vectors.extend(to_matrix(table.column(ShotCol.CLIP_VEC), store.manifest.clip_dim or 0)),
        rows=snap.clip.rows.extend(scene_rows),
        shot_index=snap.clip.shot_index.extend(np.array(table.column(ShotCol.INDEX).to_pylist(), np.int64)),
        positions=snap.clip.positions.with_changes(positions),
    )
    return shots, clip


def _read(store: Store, name: str, versions: dict[str, int], key: str, ids: list[str], cols: list[str]) -> pa.Table:
    """The rows whose `key` is in `ids`, as of `versions` (in batches, so a filter never grows unbounded)."""
    table = _pinned(store, name, versions)
    parts = [
        table.search().where(in_filter(key, ids[i : i + READ_BATCH])).select(cols).limit(None).to_arrow()
        for i in range(0, len(ids), READ_BATCH)
    ]
    return pa.concat_tables(parts) if parts else table.search().select(cols).limit(0).to_arrow()


def _held_columns(store: Store, keys: list[str], version: int) -> pa.Table:
    """Held scene columns in the order of the text ANN positions."""
    names = [c for c in store.table(SCENES).schema.names if c not in NOT_HELD]
    table = store.columns(SCENES, names, version=version)
    order = {sid: i for i, sid in enumerate(table.column(SceneCol.ID).to_pylist())}
    return table.take(np.array([order[k] for k in keys], dtype=np.int64)) if keys else table


def _pinned(store: Store, name: str, versions: dict[str, int]) -> Any:
    """A table handle checked out at the snapshot's version (full-text search reads through it)."""
    return store.reader(name, versions[name])


def _shot_lists(rows: list[dict[str, Any]]) -> dict[str, list[Shot]]:
    shots: dict[str, list[Shot]] = {}
    for r in sorted(rows, key=lambda r: (r[ShotCol.SCENE], r[ShotCol.INDEX])):
        shots.setdefault(r[ShotCol.SCENE], []).append(
            Shot(r[ShotCol.INDEX], r[ShotCol.START], r[ShotCol.END], r[ShotCol.THUMB], r[ShotCol.MEDIA])
        )
    return shots


def _layer(store: Store, name: str, version: int, saved: bool) -> ann.AnnIndex | None:
    """The saved FAISS layer as it is (`saved`), or one that reflects `version` of its table."""
    return ann.load_at(store.location, name) if saved else ann.load_or_build(store, name, version=version)


def _shot_layer(
    store: Store, row: dict[str, int], version: int, saved_layers: bool
) -> tuple[dict[str, list[Shot]], ShotLayer | None]:
    """Shots by scene and the CLIP layer."""
    cols = [ShotCol.SCENE, ShotCol.INDEX, ShotCol.START, ShotCol.END, ShotCol.THUMB, ShotCol.MEDIA]
    shots = _shot_lists(store.columns(SHOTS, cols, version=version).to_pylist())
    clip_ann = _layer(store, ann.SHOT_CLIP, version, saved_layers)
    if clip_ann is None:
        if saved_layers and store.manifest.clip_dim:
            raise _MovedError  # the CLIP layer was not saved with this base
        return shots, None
    if clip_ann.version != version:
        raise _MovedError
    keys = [ann.split_shot_key(k) for k in clip_ann.keys]
    rows = np.array([row[s] for s, _ in keys], dtype=np.int64)
    positions: dict[int, list[int]] = {}
    for pos, r in enumerate(rows):
        positions.setdefault(int(r), []).append(pos)
    layer = ShotLayer(
        vectors=SegmentedVectors.of(clip_ann),
        rows=GrowingArray.of(rows),
        shot_index=GrowingArray.of(np.array([i for _, i in keys], dtype=np.int64)),
        positions=Overlay(positions),
    )
    return shots, layer


def _sku_rows(column: pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Sku -> the rows that show it, with Arrow doing the per-row work."""
    array = column.combine_chunks()
    flat = pc.dictionary_encode(pc.list_flatten(array))
    if not len(flat):
        return {}
    parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False).astype(np.int64)
    codes = flat.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(flat.dictionary) + 1))
    return {sku: parents[order[bounds[i] : bounds[i + 1]]] for i, sku in enumerate(flat.dictionary.to_pylist())}


def _products(store: Store, version: int, ids: list[str], sku_rows: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Product facts by sku, from the record of the first scene showing it (the catalog has no product file)."""
    first = sorted({int(rows.min()) for rows in sku_rows.values()})
    table = _read(
        store, SCENES, {SCENES: version}, SceneCol.ID, [ids[r] for r in first], [SceneCol.ID, SceneCol.RECORD]
    )
    records = dict(zip(table.column(SceneCol.ID).to_pylist(), table.column(SceneCol.RECORD).to_pylist(), strict=True))
    products: dict[str, dict[str, Any]] = {}
    for r in first:
        for product in json.loads(records[ids[r]]).get("products", []):
            products.setdefault(product["sku"], product)
    return products


def _consents(store: Store, versions: dict[str, int] | None = None) -> dict[str, ConsentState]:
    cols = [ConsentCol.ID, ConsentCol.SCOPES, ConsentCol.EXPIRES, ConsentCol.REVOKED]
    table = _pinned(store, CONSENTS, versions) if versions else store.table(CONSENTS)
    rows = table.search().select(cols).limit(None).to_list()
    return {
        r[ConsentCol.ID]: ConsentState(
            r[ConsentCol.ID], frozenset(r[ConsentCol.SCOPES] or []), r[ConsentCol.EXPIRES], r[ConsentCol.REVOKED]
        )
        for r in rows
    }


def _ads(store: Store, versions: dict[str, int] | None = None) -> tuple[list[AdEntry], np.ndarray]:
    cols = [AdCol.ID, AdCol.SKUS, AdCol.CATEGORIES, AdCol.TONES, AdCol.BID, AdCol.CREATIVES, AdCol.RECORD]
    handle = _pinned(store, ADS, versions) if versions else store.table(ADS)
    table = handle.search().select([*cols, AdCol.TEXT_VEC]).limit(None).to_arrow()
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
        for r in table.select(cols).to_pylist()
    ]
    return ads, to_matrix(table.column(AdCol.TEXT_VEC), store.manifest.text_dim)
