"""Prometheus metrics on a registry owned by one app (tests build several apps in one process).

Requests are counted and timed by route template (`/v1/scenes/{scene_id}`, never the raw path, so ids
do not explode the label space); unmatched paths share one label.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.query_cache import CacheStats

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
UNMATCHED = "(unmatched)"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "visual_intent_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "visual_intent_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.writes = Counter("visual_intent_writes", "Index writes by kind.", ["kind"], registry=self.registry)
        self.refreshes = Counter(
            "visual_intent_snapshot_refreshes", "Snapshots swapped in after an index write.", registry=self.registry
        )
        self.scenes = Gauge("visual_intent_scenes", "Scenes in the serving snapshot.", registry=self.registry)
        self.encoder_batch_texts = Histogram(
            "visual_intent_encoder_batch_texts",
            "Texts per query-encoder call (after the cache, merged across requests).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.encoder_batch_requests = Histogram(
            "visual_intent_encoder_batch_requests",
            "Requests served by one query-encoder call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        cache = {
            name: Gauge(f"visual_intent_query_cache_{name}", doc, registry=self.registry)
            for name, doc in (
                ("size", "Query encodings held in the LRU cache."),
                ("capacity", "Most query encodings the cache holds."),
                ("hits", "Texts served from the query cache since start."),
                ("misses", "Texts the query cache sent to the encoder since start."),
                ("hit_rate", "hits / (hits + misses) since start."),
            )
        }
        self._cache_gauges = cache

    def track_scenes(self, count: Callable[[], int]) -> None:
        self.scenes.set_function(lambda: float(count()))

    def track_query_cache(self, stats: Callable[[], CacheStats]) -> None:
        def reader(name: str) -> Callable[[], float]:
            return lambda: float(getattr(stats(), name))

        for name, gauge in self._cache_gauges.items():
            gauge.set_function(reader(name))

    def observe_encoder_batch(self, requests: int, texts: int) -> None:
        self.encoder_batch_requests.observe(requests)
        self.encoder_batch_texts.observe(texts)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: reads the matched route from the scope after the app has handled the request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = str(scope.get("method", "GET"))
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
