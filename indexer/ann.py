"""FAISS: the fast ANN layer derived from LanceDB vectors.

An `AnnIndex` is saved next to the LanceDB version it reflects (`ann/<name>.faiss` + `<name>.json`; on object
storage `ann/<name>.v<version>.faiss`, never overwritten, named by the `.json` written after it);
`load_or_build` rebuilds it when that version is stale. Small collections use exact inner-product search;
above `EXACT_LIMIT` rows an HNSW graph trades a little recall for speed (measured in bench/).
Vectors are L2-normalised, so inner product is cosine similarity.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.location import IndexLocation
from indexer.schema import SCENES, SHOTS, SceneCol, ShotCol
from indexer.store import Store, to_matrix

EXACT_LIMIT = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
ANN_DIR = "ann"
SCENE_TEXT = "scenes_text"  # keys: scene ids
SHOT_CLIP = "shots_clip"  # keys: "scene_id#shot_index" ('#' never occurs in an id)


def _faiss() -> Any:
    """faiss, imported on first use (package import stays cheap) and typed loosely: its stubs lack the HNSW API."""
    import faiss

    return faiss


@dataclass
class AnnIndex:
    index: Any  # faiss.Index
    keys: list[str]  # position -> key (scene id, or "scene_id#shot" for shots)
    version: int  # the LanceDB table version the vectors came from
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product; `allowed` (bool per position) is applied inside FAISS, before ranking."""
        faiss = _faiss()

        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.index.d)
        k = min(k, len(self.keys))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        # locals keep the bitmap and selector alive for the duration of the call (FAISS holds raw pointers)
        bitmap = selector = None
        if allowed is not None and not allowed.all():
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        if self.params.get("kind") == "hnsw":
            # the candidate list must be at least k long, or HNSW returns fewer good neighbours than asked for
            ef = max(int(self.params["ef_search"]), k)
            params: Any = (
                faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
                if selector
                else faiss.SearchParametersHNSW(efSearch=ef)
            )
        else:
            params = faiss.SearchParameters(sel=selector) if selector else None
        scores, positions = self.index.search(queries, k, params=params)
        return scores, positions

    def vectors(self) -> np.ndarray:
        """The stored vectors (position order) as a read-only view of FAISS's own storage: no second copy."""
        faiss = _faiss()

        flat = faiss.downcast_index(self.index.storage) if self.params.get("kind") == "hnsw" else self.index
        if not len(self.keys):
            return np.zeros((0, self.index.d), np.float32)
        view = faiss.rev_swig_ptr(flat.get_xb(), len(self.keys) * self.index.d)
        matrix: np.ndarray = np.asarray(view).reshape(len(self.keys), self.index.d)
        matrix.flags.writeable = False
        return matrix


def build(vectors: np.ndarray, keys: list[str], version: int, kind: str = "auto") -> AnnIndex:
    faiss = _faiss()

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if kind == "auto":
        kind = "flat" if len(vectors) <= EXACT_LIMIT else "hnsw"
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        params: dict[str, Any] = {"kind": "flat"}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
        params = {"kind": "hnsw", "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}
    else:
        raise ValueError(f"unknown ANN kind '{kind}' (choose auto, flat or hnsw)")
    if len(vectors):
        index.add(vectors)
    return AnnIndex(index=index, keys=list(keys), version=version, params=params)


def save(ann: AnnIndex, folder: Path, name: str) -> None:
    """Index file first, then the sidecar that names its version: a reader never trusts a half-written pair."""
    faiss = _faiss()

    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.faiss.")
    os.close(fd)
    faiss.write_index(ann.index, tmp)
    os.replace(tmp, folder / f"{name}.faiss")
    meta = {"version": ann.version, "params": ann.params, "keys": ann.keys}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.json.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    os.replace(tmp, folder / f"{name}.json")


def load(folder: Path, name: str) -> AnnIndex | None:
    faiss = _faiss()

    meta_file, index_file = folder / f"{name}.json", folder / f"{name}.faiss"
    if not (meta_file.is_file() and index_file.is_file()):
        return None
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    index = faiss.read_index(str(index_file))
    if index.ntotal != len(meta["keys"]):
        return None  # the pair was written by two different runs; rebuild
    if meta["params"].get("kind") == "hnsw":
        index.hnsw.efSearch = meta["params"].get("ef_search", HNSW_EF_SEARCH)
    return AnnIndex(index=index, keys=meta["keys"], version=int(meta["version"]), params=meta["params"])


def save_at(ann: AnnIndex, location: IndexLocation, name: str) -> None:
    """Save into the index's `ann/` folder; on object storage the versioned index object goes first, then the
    meta that names it, so a reader reading the meta and then the object it names never pairs the wrong two."""
    if location.is_local:
        save(ann, location.local_path / ANN_DIR, name)
        return
    faiss = _faiss()
    index_name = f"{name}.v{ann.version}.faiss"
    before = location.read_json(f"{ANN_DIR}/{name}.json") or {}
    location.write_bytes(f"{ANN_DIR}/{index_name}", faiss.serialize_index(ann.index).tobytes())
    meta = {"version": ann.version, "params": ann.params, "keys": ann.keys, "index": index_name}
    location.write_bytes(f"{ANN_DIR}/{name}.json", json.dumps(meta).encode("utf-8"))
    # older objects go; the one the previous meta named stays (a reader may have read that meta a moment ago)
    keep = {index_name, before.get("index")}
    for old in location.list(ANN_DIR):
        if old.startswith(f"{name}.v") and old.endswith(".faiss") and old not in keep:
            location.delete(f"{ANN_DIR}/{old}")


def load_at(location: IndexLocation, name: str) -> AnnIndex | None:
    if location.is_local:
        return load(location.local_path / ANN_DIR, name)
    faiss = _faiss()
    raw_meta = location.read_bytes(f"{ANN_DIR}/{name}.json")
    if raw_meta is None:
        return None
    meta = json.loads(raw_meta)
    raw = location.read_bytes(f"{ANN_DIR}/{meta.get('index', '')}")
    if raw is None:
        return None  # replaced and removed meanwhile: rebuild, or the caller loads again
    index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
    if index.ntotal != len(meta["keys"]):
        return None
    if meta["params"].get("kind") == "hnsw":
        index.hnsw.efSearch = meta["params"].get("ef_search", HNSW_EF_SEARCH)
    return AnnIndex(index=index, keys=meta["keys"], version=int(meta["version"]), params=meta["params"])


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force top-k positions: the ground truth for ANN recall."""
    return build(vectors, [""] * len(vectors), 0, kind="flat").search(queries, k)[1]


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k that the ANN top-k found."""
    pairs = zip(approx, exact, strict=True)
    hits = [len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum())) for a, e in pairs]
    return float(np.mean(hits)) if hits else 0.0


def shot_key(scene_id: str, shot_index: int) -> str:
    return f"{scene_id}#{shot_index}"


def split_shot_key(key: str) -> tuple[str, int]:
    scene_id, _, shot = key.rpartition("#")
    return scene_id, int(shot)


def _table_of(name: str) -> str:
    return SCENES if name == SCENE_TEXT else SHOTS


def _source(store: Store, name: str, version: int) -> tuple[list[str], np.ndarray] | None:
    """Keys and vectors of one ANN layer read at `version` of its table, whatever commits meanwhile; None when
    the index has no such vectors."""
    if name == SCENE_TEXT:
        table = store.columns(SCENES, [SceneCol.ID, SceneCol.TEXT_VEC], version=version)
        keys = [str(k) for k in table.column(SceneCol.ID).to_pylist()]
        column, dim = table.column(SceneCol.TEXT_VEC), store.manifest.text_dim
    elif name == SHOT_CLIP and store.manifest.clip_dim:
        table = store.columns(
            SHOTS,
            [ShotCol.SCENE, ShotCol.INDEX, ShotCol.CLIP_VEC],
            where=f"{ShotCol.CLIP_VEC} IS NOT NULL",
            version=version,
        )
        pairs = zip(table.column(ShotCol.SCENE).to_pylist(), table.column(ShotCol.INDEX).to_pylist(), strict=True)
        keys = [shot_key(s, i) for s, i in pairs]
        column, dim = table.column(ShotCol.CLIP_VEC), store.manifest.clip_dim
    else:
        return None
    return keys, to_matrix(column, dim)


def load_or_build(store: Store, name: str, kind: str = "auto", version: int | None = None) -> AnnIndex | None:
    """The saved index when it reflects `version` of its table (default: the latest), else one built at that
    version (and saved)."""
    version = int(store.table(_table_of(name)).version) if version is None else version
    saved = load_at(store.location, name)
    if saved is not None and saved.version == version and (kind == "auto" or saved.params["kind"] == kind):
        return saved
    source = _source(store, name, version)
    if source is None:
        return None
    keys, vectors = source
    built = build(vectors, keys, version, kind)
    save_at(built, store.location, name)
    return built


def sync(store: Store) -> dict[str, Any]:
    """Bring every ANN layer up to the LanceDB versions; returns what each one holds. A store serving its scene
    text from Lance's own index (`store.lance_ann`) has no FAISS text layer to keep."""
    report = {}
    for name in (SHOT_CLIP,) if store.lance_ann else (SCENE_TEXT, SHOT_CLIP):
        layer = load_or_build(store, name)
        if layer is not None:
            report[name] = {"rows": len(layer), "version": layer.version, **layer.params}
    return report
