"""Lance's own IVF_PQ index on the scenes' text vectors: the dense channel's base when one replica cannot hold
the in-memory FAISS layer (`Engine.open(..., ann="lance")`, `visual-intent serve --ann lance`).

The index lives in the scenes table's folder (local or on object storage) and is versioned with it, so a
reader pinned at a table version searches exactly that version's rows: rows added after the index was last
built or optimised are scanned flat by Lance itself, rows deleted since are gone from that version.

Where it is built, and why there:
- `visual-intent index --ann lance`, at the end of an ingest: the slow k-means training happens offline,
  once, not in a serving replica's start-up.
- `ensure` on `Engine.open(ann="lance")` when the table has no such index (an index built without the flag
  still serves; the first replica pays the training, and saves the manifest so readers see no gap).
- compaction (`search.compaction`): LanceDB's `optimize` already folds new rows into the existing partitions;
  `ensure` retrains only when the table has grown past `RETRAIN_GROWTH` times the rows it was trained on
  (the partitions no longer fit the `partitions_for` rule).

Parameters: `num_partitions = min(isqrt(rows), rows // 256)` (LanceDB's own sqrt(rows) default, capped so
k-means keeps the 256 training vectors per partition Lance samples; below 256 rows there is no index and Lance
scans flat), `num_sub_vectors = dim / 8` (48 bytes per 384-d vector), cosine distance (the vectors are
L2-normalised, so 1 - distance is the inner product FAISS scores). Query defaults: `NPROBES`, `REFINE_FACTOR`
(measured in bench/bench_lance_ivf.py --engine).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from indexer.schema import SCENES, SceneCol

if TYPE_CHECKING:
    from indexer.store import Store

DISTANCE: Literal["cosine"] = "cosine"
MIN_ROWS = 256  # PQ trains 256 codes per sub-vector: fewer rows leave the index empty (Lance scans flat)
RETRAIN_GROWTH = 4.0  # retrain when the table holds this many times the rows the partitions were trained on
# Query defaults, measured on the engine's dense channel (depth 200) over 100,500 stand-in vectors (hash:384,
# NOT semantic; 317 partitions): recall@10 vs exact 0.75 / 0.86 / 0.93 / 0.97 at nprobes 20 / 40 / 80 / 160.
NPROBES = 80  # partitions searched per query (a quarter of them at 100k; vectors that cluster better need fewer)
REFINE_FACTOR = 2  # re-score limit x this many PQ candidates with their full vectors: exact scores returned
META = "ann/scenes_text.lance.json"  # what the index was trained with (rows, partitions)


@dataclass(frozen=True)
class LanceAnn:
    """How the engine queries the IVF_PQ index (the serving choice `ann="lance"`)."""

    nprobes: int = NPROBES
    refine_factor: int | None = REFINE_FACTOR

    @property
    def params(self) -> dict[str, Any]:
        return {"kind": "lance_ivf_pq", "nprobes": self.nprobes, "refine_factor": self.refine_factor}


def partitions_for(rows: int) -> int:
    return max(1, min(math.isqrt(rows), rows // MIN_ROWS))


def sub_vectors_for(dim: int) -> int:
    return dim // 8 if dim % 8 == 0 else 1


def vector_index(table: Any) -> Any | None:
    """The IVF_PQ index on the text vector column, or None."""
    return next(
        (i for i in table.list_indices() if SceneCol.TEXT_VEC in i.columns and "pq" in str(i.index_type).lower()),
        None,
    )


def build(store: Store) -> dict[str, Any]:
    """Train the IVF_PQ index on the latest scenes (replacing one that exists) and save the manifest."""
    from lancedb.index import IvfPq

    from indexer import changelog

    table = store.table(SCENES)
    rows = int(table.count_rows())
    partitions, sub = partitions_for(rows), sub_vectors_for(store.manifest.text_dim)
    started = time.perf_counter()
    config = IvfPq(distance_type=DISTANCE, num_partitions=partitions, num_sub_vectors=sub)
    # logged (as a write of no rows) so that replicas following the log move their versions on and keep
    # their snapshots instead of loading a new base; inside compaction's own logged block it nests harmlessly
    with changelog.logged(store):
        table.create_index(SceneCol.TEXT_VEC, config=config, replace=True)
    report = {"rows": rows, "partitions": partitions, "sub_vectors": sub, "distance": DISTANCE}
    store.location.write_json(META, report)
    store.save_manifest()  # the index is a commit: readers following the manifest see no unlogged gap
    built_s = round(time.perf_counter() - started, 1)
    return {**report, "kind": "lance_ivf_pq", "version": int(table.version), "built_s": built_s}


def ensure(store: Store) -> dict[str, Any] | None:
    """Build the index when it is missing, or retrain it when the table has outgrown its partitions; None
    when the index is fine as it is (or the table is too small for one)."""
    table = store.table(SCENES)
    rows = int(table.count_rows())
    if rows < MIN_ROWS:
        return None
    if vector_index(table) is None:
        return build(store)
    trained = (store.location.read_json(META) or {}).get("rows")
    if trained and rows >= RETRAIN_GROWTH * int(trained):
        return build(store)
    return None
