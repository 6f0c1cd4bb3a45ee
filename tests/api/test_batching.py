"""The cross-request micro-batcher over the real MiniLM: concurrent requests share model calls, each gets its
own rows, failures reach every waiting request, and the service reports cache and batch metrics."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.batching import MicroBatcher
from indexer.encoders import Modality, SentenceTransformerEncoder
from tests.api.api_support import READ
from tests.search.test_query_cache import CountingEncoder


class FailingOn:
    """Fails any batch holding `poison` (a stand-in for a model error)."""

    modality: Modality = "text"

    def __init__(self, inner: SentenceTransformerEncoder, poison: str):
        self.inner, self.id, self.dim, self.poison = inner, inner.id, inner.dim, poison

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        if self.poison in batch:
            raise RuntimeError("model failed")
        return self.inner.encode(batch)


def test_concurrent_requests_share_calls_and_get_their_rows(text_encoder: SentenceTransformerEncoder) -> None:
    counter = CountingEncoder(text_encoder)
    batches: list[tuple[int, int]] = []
    batcher = MicroBatcher(counter, max_wait_s=0.05, max_texts=64, on_batch=lambda r, t: batches.append((r, t)))
    texts = [f"request {i}: a red parka on a ridge" for i in range(24)]
    try:
        with ThreadPoolExecutor(8) as pool:
            rows = list(pool.map(lambda t: batcher.encode([t, t + " at night"]), texts))
    finally:
        batcher.close()
    expected = text_encoder.encode([x for t in texts for x in (t, t + " at night")])
    for i, got in enumerate(rows):
        np.testing.assert_allclose(got, expected[2 * i : 2 * i + 2], atol=1e-4)
    assert len(counter.calls) < len(texts) and max(r for r, _ in batches) > 1
    assert sum(t for _, t in batches) == 48 and all(t <= 64 for _, t in batches)


def test_a_failed_call_fails_its_requests_only(text_encoder: SentenceTransformerEncoder) -> None:
    batcher = MicroBatcher(FailingOn(text_encoder, "poison"), max_wait_s=0.0)
    try:
        with pytest.raises(RuntimeError, match="model failed"):
            batcher.encode(["poison"])
        assert batcher.encode(["fine"]).shape == (1, text_encoder.dim)
    finally:
        batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.encode(["after close"])


def test_metrics_report_the_query_cache_and_batches(client: TestClient) -> None:
    body = {"query": "a quiet beach at dawn with a tan weekender holdall", "k": 3}
    for _ in range(2):
        assert client.post("/v1/search", json=body, headers=READ).status_code == 200
    metrics = client.get("/metrics").text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith(("visual_intent_query_cache_", "visual_intent_encoder_batch_texts_count"))
    }
    assert values["visual_intent_query_cache_hits"] >= 2  # the search text, and every phrase the second time
    assert 0 < values["visual_intent_query_cache_hit_rate"] < 1
    assert values["visual_intent_query_cache_size"] <= values["visual_intent_query_cache_capacity"] == 4096
    assert values["visual_intent_encoder_batch_texts_count"] >= 1
