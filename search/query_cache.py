"""An LRU cache of query encodings in front of the text encoder.

Scenario queries repeat (the same phrases, the same product words), and one search asks for its frame phrases
and its search text together: the parser encodes both in one call, and the engine's later lookup of the search
text is served from here. Only texts missing from the cache reach the encoder, in one call per `encode`.
Thread-safe: the API calls it from many request threads at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.encoders import Encoder, Modality

DEFAULT_CACHE_SIZE = 4096


@dataclass(frozen=True)
class CacheStats:
    size: int
    capacity: int
    hits: int
    misses: int

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class CachedEncoder:
    """An `Encoder` that remembers the last `capacity` texts it encoded (0 = no caching)."""

    modality: Modality = "text"

    def __init__(self, inner: Encoder, capacity: int = DEFAULT_CACHE_SIZE):
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self.capacity = max(0, capacity)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
            self._hits += sum(1 for t in texts if t in found)
            self._misses += sum(1 for t in texts if t not in found)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = self.inner.encode(missing)  # outside the lock: encoding is the slow part
            found.update(zip(missing, fresh, strict=True))
            self._remember(missing, fresh)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        if not self.capacity:
            return
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                vector.setflags(write=False)  # shared between requests: nobody may change it in place
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._vectors), self.capacity, self._hits, self._misses)
