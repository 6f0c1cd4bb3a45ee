"""The media file behind a shot (the search page plays the best shot of a clip).

Only files the serving snapshot references are served: the path comes from the index (validated at ingest),
never from the request, which names a scene id and a shot index. A scene not eligible for search right now,
a missing file, or a type that is not a known video or image is a 404. Range requests are answered, so a
browser can seek to the shot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from api.errors import ApiError, error_responses
from api.routes.deps import ServiceDep
from api.security import ReadAccess
from indexer.schema import ID_PATTERN
from search.consent import now_utc

router = APIRouter(prefix="/v1", tags=["scenes"])
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
BINARY = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in sorted(set(MEDIA_TYPES.values()))}
SceneId = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["scn-0003"])]


@router.get(
    "/scenes/{scene_id}/shots/{index}/media",
    summary="The video (or image) file a shot comes from",
    response_class=Response,
    responses={
        200: {"content": BINARY, "description": "The whole file"},
        206: {"content": BINARY, "description": "Part of the file (a Range request)"},
        **error_responses(401, 403, 404, 422),
    },
)
def shot_media(
    scene_id: SceneId, index: Annotated[int, PathParam(ge=0, le=100_000)], service: ServiceDep, _: ReadAccess
) -> Response:
    """Seek to the shot's `start_s` to play it. Same rules as thumbnails: eligible-for-search scenes only."""
    snap = service.snapshot
    shot = next((s for s in snap.shots.get(scene_id, []) if s.index == index), None)
    if shot is None or not snap.scene_eligible(scene_id, "search", now_utc()):
        raise ApiError(404, "not_found", "no such shot media")
    target = _media_file(shot.media_path)
    if target is None:
        raise ApiError(404, "not_found", "no such shot media")
    return FileResponse(target, media_type=MEDIA_TYPES[target.suffix.lower()], headers={"Cache-Control": "private"})


def _media_file(recorded: str) -> Path | None:
    """The indexed file if it still exists as a regular file of a known media type."""
    try:
        target = Path(recorded).resolve()
        if not target.is_file():
            return None
    except (OSError, ValueError):
        return None
    return target if target.suffix.lower() in MEDIA_TYPES else None
