"""Compaction: fold the delta and the tombstones back into a new base, off the search path.

When the delta or the tombstones pass a threshold (`due`), the engine compacts in a background thread:
LanceDB's `optimize` merges small files, brings the full-text index up to date and removes versions older
than `CLEANUP_AFTER` (and folds new rows into the IVF_PQ index of an `ann="lance"` engine, see
`indexer.lance_ann`); the FAISS layers are rebuilt at the new version and saved; a new base snapshot is
loaded. Meanwhile searches read the old snapshot and writes keep committing; the writes that landed during
the build are then applied to the new base from the write log before it is swapped in. A crash during
compaction loses nothing: LanceDB holds every committed row, and the old FAISS files stay until the new ones
replace them atomically.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np

from indexer import ann, changelog, lance_ann
from indexer.schema import ADS, SCENES, SHOTS
from indexer.store import Store
from indexer.vocab import Vocabulary
from search import live
from search.snapshot import Snapshot

DELTA_ROWS = 50_000  # compact once the delta holds this many rows ...
DELTA_FRACTION = 0.10  # ... or this share of the base, whichever is smaller
MIN_DELTA_ROWS = 1_000  # (small indexes: a delta this small costs nothing to scan)
DEAD_FRACTION = 0.20  # or once this share of all rows are tombstones
CLEANUP_AFTER = timedelta(minutes=10)  # older LanceDB versions (and their index files) are removed
# Each write adds a small file per table, and LanceDB's lookups (the upsert's key match, the reader's re-read)
# pay per file not yet in the key index: merge them every this many scene-table commits (at 1M scenes, 280
# unmerged files made a one-scene write 222 ms instead of 94 ms).
MERGE_FILES_EVERY = 32
# Merged files stop growing at this many rows, so a merge rewrites only what writes added since the last
# compaction, never the bulk-loaded files: LanceDB's `optimize` counts a file under ~1M rows as small and
# rewrote all 1M rows (23 s) to merge 12 small ones.
MERGE_FILE_ROWS = 100_000


def due(snap: Snapshot) -> bool:
    delta_limit = max(MIN_DELTA_ROWS, min(DELTA_ROWS, int(DELTA_FRACTION * snap.base_rows)))
    dead = int(np.count_nonzero(snap.dead))
    return snap.delta_rows >= delta_limit or dead >= max(MIN_DELTA_ROWS, DEAD_FRACTION * len(snap))


def merge_files(store: Store) -> None:
    """Merge the small files writes left (LanceDB's `compact_files`, up to `MERGE_FILE_ROWS` a file). Indexes
    and old versions are left to `compact` (the saved base may be reading an old version). Logged as a write
    that changes no row, so readers follow it without reloading."""
    for name in (SCENES, SHOTS):
        with changelog.logged(store):  # one entry per table: a failure on the second leaves the first logged
            store.table(name).compact_files(target_rows_per_fragment=MERGE_FILE_ROWS)


def compact(store: Store, vocab: Vocabulary) -> Snapshot:
    """Optimise the tables, rebuild the FAISS layers, and load the result as a new base."""
    started = time.time_ns()
    with changelog.logged(store):
        for name in (SCENES, SHOTS, ADS):
            store.table(name).optimize(cleanup_older_than=CLEANUP_AFTER)  # files, new rows into indexes, old versions
        store.index_keys()
        if store.lance_ann:  # optimize folded the new rows into its partitions; retrain once it outgrew them
            lance_ann.ensure(store)
    store.save_manifest()
    ann.sync(store)
    base = live.load_base(store, vocab)
    changelog.truncate(store, started)
    return base
