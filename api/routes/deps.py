"""Shared state of one running service and its `Annotated` dependencies.

Writes (scene upserts and deletes, consent changes) go through `Service.write`: one lock serializes them,
the indexer function commits and logs the batch, then `engine.refresh()` publishes the next snapshot (the
batch applied as a delta: its cost, not the catalog's) before the response is sent. Searches read
`engine.snapshot` once per request, so they see the index either before or after a batch, never half of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from api.metrics import Metrics
from api.settings import Settings
from indexer.pipeline import Encoders
from indexer.store import Store
from search.engine import Engine
from search.snapshot import Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Service:
    settings: Settings
    engine: Engine
    metrics: Metrics
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def snapshot(self) -> Snapshot:
        return self.engine.snapshot

    @property
    def store(self) -> Store:
        return self.engine.store

    def encoders(self) -> Encoders:
        """The engine's loaded models, reused by API writes (no model is loaded per request)."""
        return Encoders(self.engine.text, self.engine.clip, self.store.manifest.clip)

    def write(self, kind: str, action: Callable[[], T]) -> T:
        """Run one index write under the write lock, then swap in the new snapshot before answering."""
        with self.write_lock:
            try:
                return action()
            finally:
                if self.engine.refresh():
                    self.metrics.refreshes.inc()
                self.metrics.writes.labels(kind).inc()

    def written_versions(self) -> dict[str, int]:
        """The table versions a write response reports: the committed ones where the serving snapshot lags
        behind them. It lags when another writer died between its commit and its log entry (held back for up to
        the publisher's grace period); a search passing this as `min_version` then waits through that gap
        instead of being served a snapshot without this write."""
        served = self.snapshot.versions  # the refresh after the write has just read the committed versions
        return {name: max(version, served.get(name, 0)) for name, version in self.store.last_versions.items()}

    def refresh_if_settled(self) -> bool:
        """Pick up writes made outside this service (another `serve` or `visual-intent index` on the folder):
        logged writes are applied as a delta, anything else once its writer has saved the manifest."""
        with self.write_lock:
            if self.engine.refresh():
                self.metrics.refreshes.inc()
                log.info("picked up index versions %s", self.snapshot.versions)
                return True
            return False


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
