"""The serving snapshot of one process, and how it moves on: writes followed through the write log, background
compaction, read-your-writes waits, and consent changes that take effect before they are durable.

Searches read `Publisher.snapshot` once per request and keep it; every new snapshot is published whole, under
one lock, so a search sees a write entirely or not at all. The publisher keeps the exact snapshot of the
committed tables and serves it with any consent changes still being committed applied on top, restrictively:
what a change takes away (a revocation, a narrower scope, an earlier expiry) is withheld from the next search
on, before LanceDB has committed it; what it grants is served only once committed and read back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from indexer import changelog
from indexer.errors import VersionNotReachedError
from indexer.schema import SCENES
from indexer.store import Store, read_manifest
from indexer.vocab import Vocabulary
from search import compaction, live
from search.consent import ConsentState, now_utc, stricter
from search.snapshot import Snapshot

log = logging.getLogger(__name__)

VERSION_WAIT_S = 5.0  # how long a search with `min_version` waits for the index to reach it
# A gap in the write log with a stale manifest means a writer is mid-run, or died between its commit and its
# log entry (a replica killed mid-write). Past this long, the reader loads a new base anyway.
GAP_GRACE_S = 5.0


@dataclass
class _Withheld:
    """Consent states being committed; served until the exact snapshot reaches `target` (None: in flight)."""

    states: dict[str, ConsentState]
    target: dict[str, int] | None = None

    def settled_by(self, versions: Mapping[str, int]) -> bool:
        return self.target is not None and all(versions.get(t, 0) >= v for t, v in self.target.items())


class Publisher:
    def __init__(self, store: Store, vocab: Vocabulary, saved_base: bool = True):
        self.store = store
        self.vocab = vocab
        self._lock = threading.Lock()  # one snapshot publisher at a time
        self._withheld: list[_Withheld] = []
        self._gap_since: float | None = None  # when the log first failed to cover the live versions
        if saved_base:  # write-log entries before `_log_seq` are in the snapshot (see indexer.changelog)
            exact, self._log_seq, self.opened_from = live.open_base(store, vocab)
        else:
            self._log_seq, self.opened_from = time.time_ns(), "live tables"
            exact = live.load_base(store, vocab)
        self._publish(exact)
        self.auto_compact = False  # the service turns it on; tests and tools compact explicitly
        self._compacting: threading.Thread | None = None  # the background compaction or file merge
        self._files_merged_at = exact.versions[SCENES]  # the scene-table version of the last file merge

    def refresh(self) -> bool:
        """Publish a snapshot of the live tables if they moved on: the logged writes since this snapshot are
        applied as a delta (cost of the writes); a bulk or unlogged change loads a new base once the writer has
        finished. Searches in flight keep the snapshot they started with."""
        with self._lock:
            snap, versions = self._exact, self.store.versions()
            if versions == snap.versions:
                return False
            started = time.time_ns()
            caught_up = self._catch_up(snap, versions, wait_for_writer=True)
            if caught_up is None:
                return False  # a writer is between its commit and its manifest: wait for it (a while)
            self._publish(caught_up)
            self._log_seq, self._gap_since = started, None
            if self.auto_compact and compaction.due(caught_up):
                self._in_background(self.compact)
            elif self.auto_compact and versions[SCENES] - self._files_merged_at >= compaction.MERGE_FILES_EVERY:
                self._in_background(self.merge_files)
            return True

    def wait_for_version(self, version: int, timeout_s: float = VERSION_WAIT_S) -> Snapshot:
        """The serving snapshot once it has reached `version` (read-your-writes across processes)."""
        deadline = time.monotonic() + timeout_s
        while self.snapshot.version < version:
            if not self.refresh():
                if time.monotonic() >= deadline:
                    raise VersionNotReachedError(
                        f"index version {version} not reached within {timeout_s:g} s (serving {self.snapshot.version})"
                    )
                time.sleep(0.01)
        return self.snapshot

    def compact(self) -> Snapshot:
        """Fold the delta and tombstones into a new base now; writes logged meanwhile are applied on top."""
        base = compaction.compact(self.store, self.vocab)
        with self._lock:
            caught_up = self._catch_up(base, self.store.versions(), wait_for_writer=False)
            assert caught_up is not None
            self._publish(caught_up)
            self._files_merged_at = caught_up.versions[SCENES]
            return caught_up

    def merge_files(self) -> None:
        """Merge the small files writes left in LanceDB (see `compaction.merge_files`); the snapshot follows."""
        compaction.merge_files(self.store)
        self._files_merged_at = self.store.versions()[SCENES]
        self.refresh()

    def change_consents(self, states: dict[str, ConsentState], commit: Callable[[], None]) -> None:
        """Run `commit` (which writes these consent states); what they take away is withheld from searches
        before it starts, what they grant is served once it has committed and been read back."""
        withheld = _Withheld(states)
        with self._lock:
            self._withheld.append(withheld)
            self._publish(self._exact)
        try:
            commit()
        except BaseException:
            with self._lock:
                self._withheld.remove(withheld)
                self._publish(self._exact)
            raise
        withheld.target = self.store.versions()
        self.refresh()

    def _catch_up(self, snap: Snapshot, versions: dict[str, int], wait_for_writer: bool) -> Snapshot | None:
        """`snap` brought to `versions`: the logged writes applied, or a new base when the log does not cover
        them (None instead when `wait_for_writer` and a writer has not saved its manifest yet)."""
        if snap.versions == versions:
            return snap
        change = changelog.covering(changelog.since(self.store, self._log_seq), snap.versions, versions)
        if change is not None and not change.bulk:
            return live.apply(snap, self.store, change, versions)
        if wait_for_writer and read_manifest(self.store.location).table_versions != versions:
            if not self._gap_expired():
                return None
        return live.load_base(self.store, self.vocab)

    def _gap_expired(self) -> bool:
        if self._compacting is not None and self._compacting.is_alive():
            return False  # the writer between its commit and its log entry may be our own merge or compaction
        now = time.monotonic()
        if self._gap_since is None:
            self._gap_since = now
        return now - self._gap_since >= GAP_GRACE_S

    def _publish(self, exact: Snapshot) -> None:
        """Serve `exact` with the consent changes still being committed applied on top, restrictively."""
        self._exact = exact
        self._withheld = [w for w in self._withheld if not w.settled_by(exact.versions)]
        if not self._withheld:
            self.snapshot = exact
            return
        states: dict[str, ConsentState] = {}
        for withheld in self._withheld:
            for persona, state in withheld.states.items():
                states[persona] = stricter(states.get(persona) or exact.consents.get(persona), state)
        masks = exact.masks.with_consents({**exact.consents, **states}, states, now_utc())
        self.snapshot = exact.with_masks(masks)

    def _in_background(self, job: Callable[[], object]) -> None:
        """Run a compaction or a file merge off the search path, one at a time."""
        if self._compacting is not None and self._compacting.is_alive():
            return

        def run() -> None:
            try:
                job()
            except Exception:  # searches keep the current snapshot; the next write retries
                log.exception("%s failed", job.__name__)

        self._compacting = threading.Thread(target=run, name=f"visual-intent-{job.__name__}", daemon=True)
        self._compacting.start()
