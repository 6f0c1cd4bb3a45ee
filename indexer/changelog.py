"""The write log: which scenes, consents and ads each committed write touched, so readers follow it cheaply.

Every write appends one entry after its data has committed, with the table versions before and after it.
A reader (the serving process, or another process on the same folder) reads the entries since its snapshot,
checks that their version intervals cover every commit between its snapshot and the live tables, then
re-reads only the named rows (`search.live.apply`). A gap (a writer died between its data and its entry, or
wrote without logging) or a bulk entry means the reader reloads instead: correctness never rests on the log.
Entries are re-read idempotently, so overlapping reads (clock skew between writers) are harmless.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from indexer.schema import CHANGES, ChangeCol, changes_schema
from indexer.store import Store

log = logging.getLogger(__name__)
BULK_ROWS = 10_000  # a write naming more scenes than this asks readers to reload instead of following it
SLACK_NS = 60 * 10**9  # entries are re-read this far back: a writer's clock may run behind another's
# Each entry is its own small file; a reader's scan costs per file, so every this many commits the writer merges
# them (at 1M scenes, 263 unmerged entries made each refresh's read 34 ms).
MERGE_EVERY = 32


@dataclass(frozen=True)
class Change:
    scenes: frozenset[str] = frozenset()
    consents: frozenset[str] = frozenset()
    ads: bool = False
    bulk: bool = False

    def merge(self, other: Change) -> Change:
        return Change(self.scenes | other.scenes, self.consents | other.consents, self.ads or other.ads,
                      self.bulk or other.bulk)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    seq: int
    change: Change
    before: dict[str, int]
    after: dict[str, int]


@dataclass
class Pending:
    """What a write is touching; filled in while it runs, logged when it has committed."""

    scenes: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    ads: bool = False
    before: dict[str, int] = field(default_factory=dict)  # the table versions when the write began
    after: dict[str, int] = field(default_factory=dict)  # ... and when it ended (for its manifest)

    def change(self) -> Change:
        bulk = len(self.scenes) > BULK_ROWS
        return Change(frozenset() if bulk else frozenset(self.scenes), frozenset(self.consents), self.ads, bulk)


def table(store: Store) -> Any:
    return store.side_table(CHANGES, changes_schema())


@contextmanager
def logged(store: Store) -> Iterator[Pending]:
    """Log what the block wrote once it has committed (nothing is logged if it raises)."""
    pending = Pending(before=store.versions())
    yield pending
    pending.after = store.versions()
    if pending.after != pending.before:
        record(store, pending.change(), pending.before, pending.after)


def record(store: Store, change: Change, before: dict[str, int], after: dict[str, int]) -> None:
    row = {
        ChangeCol.SEQ: time.time_ns(),
        ChangeCol.SCENES: sorted(change.scenes),
        ChangeCol.CONSENTS: sorted(change.consents),
        ChangeCol.ADS: change.ads,
        ChangeCol.BULK: change.bulk,
        ChangeCol.BEFORE: json.dumps(before, sort_keys=True),
        ChangeCol.AFTER: json.dumps(after, sort_keys=True),
    }
    entries = table(store)
    entries.add(pa.Table.from_pylist([row], schema=changes_schema()))
    if int(entries.version) % MERGE_EVERY == 0:
        merge_files(store)


def merge_files(store: Store) -> None:
    """Merge the entries' small files (and drop old versions of the log); a failure (e.g. a race with another
    writer's merge) leaves the log as it was, only slower to read."""
    from datetime import timedelta

    try:
        table(store).optimize(cleanup_older_than=timedelta(minutes=10))
    except Exception as exc:  # the log is an optimisation: never fail a committed write over it
        log.info("write log not merged: %s", exc)


def since(store: Store, seq: int) -> list[Entry]:
    """Entries logged after `seq` (minus the clock slack), oldest first."""
    rows = table(store).search().where(f"{ChangeCol.SEQ} > {int(seq) - SLACK_NS}").limit(None).to_list()
    entries = [
        Entry(
            r[ChangeCol.SEQ],
            Change(
                frozenset(r[ChangeCol.SCENES] or []),
                frozenset(r[ChangeCol.CONSENTS] or []),
                bool(r[ChangeCol.ADS]),
                bool(r[ChangeCol.BULK]),
            ),
            {k: int(v) for k, v in json.loads(r[ChangeCol.BEFORE]).items()},
            {k: int(v) for k, v in json.loads(r[ChangeCol.AFTER]).items()},
        )  # fmt: skip
        for r in rows
    ]
    return sorted(entries, key=lambda e: e.seq)


def covering(entries: Iterable[Entry], start: dict[str, int], live: dict[str, int]) -> Change | None:
    """The union of the entries' changes if they account for every commit from `start` to `live`, else None."""
    relevant = [e for e in entries if any(e.after.get(t, 0) > v for t, v in start.items())]
    for name, target in live.items():
        reached = start.get(name, 0)
        for entry in sorted(relevant, key=lambda e: e.before.get(name, 0)):
            if entry.before.get(name, 0) <= reached < entry.after.get(name, 0):
                reached = entry.after[name]
        if reached < target:
            return None
    change = Change()
    for entry in relevant:
        change = change.merge(entry.change)
    return change


def truncate(store: Store, up_to_seq: int) -> None:
    """Drop entries a compaction has folded into the base (kept for the slack so slow readers still see them)."""
    table(store).delete(f"{ChangeCol.SEQ} < {int(up_to_seq) - 2 * SLACK_NS}")
    merge_files(store)
