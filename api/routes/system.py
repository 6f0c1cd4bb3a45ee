"""Health, stats, Prometheus metrics and keyframe thumbnails."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from api.errors import ApiError, error_responses
from api.routes.deps import Service, ServiceDep
from api.routes.views import stats_public
from api.schemas import HealthPublic, StatsPublic
from api.security import ReadAccess
from indexer.location import IndexLocation
from indexer.pipeline import THUMBS_DIR
from indexer.schema import ID_PATTERN
from indexer.store import read_manifest
from search.consent import now_utc

router = APIRouter(tags=["system"])
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_REMOTE_THUMB = re.compile(r"(?P<scene>[^/]+)/[0-9]+-[0-9]+\.(jpg|jpeg|png|webp)", re.IGNORECASE)


@router.get("/v1/health", summary="Liveness and the serving index version (no key needed)")
def health(service: ServiceDep) -> HealthPublic:
    snap = service.snapshot
    return HealthPublic(
        status="ok", scenes=snap.scene_count, clip_status=service.engine.clip_status, index_versions=dict(snap.versions)
    )


@router.get("/v1/stats", summary="What the serving snapshot holds", responses=error_responses(401, 403))
def stats(service: ServiceDep, _: ReadAccess) -> StatsPublic:
    engine = service.engine
    result = stats_public(engine.snapshot, engine.text.id, engine.clip_status, engine.clip is not None)
    result.updated_at = read_manifest(service.store.location).updated_at or result.updated_at
    return result


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format; no key needed)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
)
def metrics(service: ServiceDep) -> Response:
    body, content_type = service.metrics.render()
    return Response(body, media_type=content_type)


@router.get(
    "/v1/thumbnails/{path:path}",
    summary="A shot keyframe thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, "description": "Image"},
        **error_responses(401, 403, 404, 422),
    },
)
def thumbnail(path: str, service: ServiceDep, _: ReadAccess) -> Response:
    """Served only from `<index>/thumbs/`, and only for scenes eligible for search right now; anything else,
    including path traversal attempts, is a 404."""
    location = service.store.location
    if not location.is_local:
        return _remote_thumbnail(location, path, service)
    target = _inside(location.local_path / THUMBS_DIR, path)
    if target is None:
        raise ApiError(404, "not_found", "no such thumbnail")
    scene_id = target.parent.name
    if not service.snapshot.scene_eligible(scene_id, "search", now_utc()):
        raise ApiError(404, "not_found", "no such thumbnail")
    return FileResponse(target, media_type=IMAGE_TYPES[target.suffix.lower()], headers={"Cache-Control": "private"})


def _remote_thumbnail(location: IndexLocation, path: str, service: Service) -> Response:
    """On object storage: only `<scene id>/<media>-<shot>.<image ext>`, read as one object."""
    match = _REMOTE_THUMB.fullmatch(path)
    if match is None or not re.match(ID_PATTERN, match["scene"]):
        raise ApiError(404, "not_found", "no such thumbnail")
    if not service.snapshot.scene_eligible(match["scene"], "search", now_utc()):
        raise ApiError(404, "not_found", "no such thumbnail")
    data = location.read_bytes(f"{THUMBS_DIR}/{path}")
    if data is None:
        raise ApiError(404, "not_found", "no such thumbnail")
    media_type = IMAGE_TYPES[PurePosixPath(path).suffix.lower()]
    return Response(data, media_type=media_type, headers={"Cache-Control": "private"})


def _inside(root: Path, relative: str) -> Path | None:
    """The file `relative` names under `root` (links resolved), or None if it is elsewhere or not an image."""
    if "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    try:
        base = root.resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or target.parent.parent != base or not target.is_file():
            return None
    except (OSError, ValueError):
        return None
    return target if target.suffix.lower() in IMAGE_TYPES else None
