"""The FastAPI service: `create_app(settings, engine=None)` wires routes, errors, limits, metrics and the page.

Models load once, in the lifespan (or the caller passes an opened `Engine`, as the tests do). A background
task polls for index writes made outside the service (`visual-intent index` on the same folder) and swaps
the new snapshot in once the writer has finished; writes made through the API refresh immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.batching import batched_queries
from api.metrics import Metrics, MetricsMiddleware
from api.routes import consents, families, media, recommend, scenes, search, system, web
from api.routes.deps import Service
from api.security import KeyRing
from api.settings import Settings
from search.engine import Engine

log = logging.getLogger(__name__)

DESCRIPTION = """Scenario search over AI-generated video scenes, with shots, remix lineage, cameo consent and ads.

Send an API key in the `X-API-Key` header. Scopes nest: `admin` > `write` > `read`. Searches, scene reads,
lineage, stats and thumbnails need `read`; scene upserts and deletes need `write`; consent changes need
`admin`. `/v1/health` and `/metrics` need no key. Every error is `{"error": {"code", "message", "details"}}`.
"""


def _version() -> str:
    try:
        return version("visual-intent")
    except PackageNotFoundError:
        return "0.0.0"


class BodyLimitMiddleware:
    """Reject request bodies over `max_bytes` with a JSON 413, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send, declared.isdigit())
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._reject(scope, receive, send, True)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, too_large: bool) -> None:
        if too_large:
            response = errors.error_response(
                413, "payload_too_large", f"request body is over the {self.max_bytes} byte limit"
            )
        else:
            response = errors.error_response(400, "bad_request", "invalid Content-Length header")
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


async def _poll_index(service: Service, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(service.refresh_if_settled)
        except Exception:  # a failed poll must not stop serving; the next one retries
            log.exception("index refresh failed; serving the previous snapshot")


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = (
            engine
            if engine is not None
            else await asyncio.to_thread(
                Engine.open, settings.location, None, None, settings.use_clip, ann=settings.ann
            )
        )
        # any replica takes writes: refuse a store whose commits are unsafe before serving (cached, once)
        await asyncio.to_thread(opened.store.location.require_conditional_put)
        batching = batched_queries(
            opened,
            settings.encoder_batch_wait_ms / 1000,
            settings.encoder_batch_max_texts,
            settings.query_cache_size,
            on_batch=metrics.observe_encoder_batch,
        )
        opened.live.auto_compact = settings.auto_compact
        with batching as queries:  # on exit the engine (which may outlive this app) encodes in-thread again
            service = Service(settings, opened, metrics)
            app.state.service = service
            metrics.track_scenes(lambda: service.snapshot.scene_count)
            metrics.track_query_cache(queries.stats)
            poller = (
                asyncio.create_task(_poll_index(service, settings.refresh_interval_s))
                if settings.refresh_interval_s
                else None
            )
            try:
                yield
            finally:
                if poller is not None:
                    poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poller

    app = FastAPI(
        title="visual-intent",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url="/redoc" if settings.docs else None,
    )
    keys = settings.all_keys()
    app.state.keyring = KeyRing(keys, open_access=settings.insecure_local and not keys)
    errors.install(app)
    for module in (search, recommend, scenes, media, consents, families, system, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """For `uvicorn --factory api.app:app_from_env`: settings from VISUAL_INTENT_* variables only."""
    return create_app(Settings())  # type: ignore[call-arg]
