"""Cross-request micro-batching of the text encoder.

Request threads hand their texts to one encoder thread and wait. That thread takes the first waiting request,
gathers whatever else arrives within `max_wait_s` (or until `max_texts` texts are queued), encodes them all in
one model call and hands every request its rows. Under load the queue fills while the model is busy, so batches
grow with concurrency; a lone request waits at most `max_wait_s`. One thread owns the model, so concurrent
requests no longer fight over the cores one text at a time.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from indexer.encoders import Encoder, Modality
from search.engine import Engine
from search.query_cache import DEFAULT_CACHE_SIZE, CachedEncoder

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 0.002
DEFAULT_MAX_TEXTS = 64
BATCH_WORKERS = 16  # searches in flight in a CLI batch: enough to fill an encoder batch
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Job:
    texts: list[str]
    result: Future[np.ndarray] = field(default_factory=Future)


class MicroBatcher:
    """An `Encoder` whose `encode` calls from many threads are merged into shared model calls."""

    modality: Modality = "text"

    def __init__(
        self,
        inner: Encoder,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        max_texts: int = DEFAULT_MAX_TEXTS,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        self.inner = inner
        self.id = inner.id
        self.dim = inner.dim
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_texts = max(1, max_texts)
        self._on_batch = on_batch  # (requests, texts) of each model call, for metrics
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="encoder-batcher", daemon=True)
        self._thread.start()

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        texts = [str(t) for t in batch]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._thread.is_alive():
            raise RuntimeError("the encoder batcher is closed")
        job = _Job(texts)
        self._jobs.put(job)
        return job.result.result()

    def close(self) -> None:
        """Stop the encoder thread after the jobs already queued."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            self._encode(jobs)
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job plus those arriving before the deadline, up to `max_texts` texts in all."""
        jobs, count = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_texts:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            count += len(job.texts)
        return jobs, False

    def _encode(self, jobs: list[_Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        try:
            vectors = self.inner.encode(texts)
        except Exception as exc:  # every waiting request gets the error, the thread lives on
            log.exception("batched encoding of %d texts failed", len(texts))
            for job in jobs:
                job.result.set_exception(exc)
            return
        start = 0
        for job in jobs:
            job.result.set_result(vectors[start : start + len(job.texts)])
            start += len(job.texts)
        if self._on_batch is not None:
            self._on_batch(len(jobs), len(texts))


@contextlib.contextmanager
def batched_queries(
    engine: Engine,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    max_texts: int = DEFAULT_MAX_TEXTS,
    cache_size: int = DEFAULT_CACHE_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
) -> Iterator[CachedEncoder]:
    """Serve the engine's query encodings through an LRU cache over a micro-batcher while inside the block
    (the service's lifetime, or one CLI batch); afterwards the engine encodes in the caller's thread again."""
    batcher = MicroBatcher(engine.text, max_wait_s, max_texts, on_batch)
    queries = CachedEncoder(batcher, cache_size)
    engine.use_query_encoder(queries)
    try:
        yield queries
    finally:
        engine.use_query_encoder(CachedEncoder(engine.text))
        batcher.close()


@dataclass
class BatchReport:
    """What a batch of searches cost the encoder."""

    calls: int = 0
    texts: int = 0
    cache_hits: int = 0

    def count(self, requests: int, texts: int) -> None:
        self.calls += 1
        self.texts += texts


def search_in_batches(
    engine: Engine, run: Callable[[T], R], items: Iterable[T], report: BatchReport | None = None
) -> Iterator[R]:
    """`run(item)` for each item, in order, from a few threads sharing one batched query encoder (the CLI's
    `search --queries`: 1,000 queries are encoded in batches, not one model call per text)."""
    report = report if report is not None else BatchReport()
    with batched_queries(engine, on_batch=report.count) as queries:
        with ThreadPoolExecutor(BATCH_WORKERS, thread_name_prefix="search") as pool:
            yield from pool.map(run, items)
        report.cache_hits = queries.stats().hits
