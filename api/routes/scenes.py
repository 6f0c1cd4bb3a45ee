"""Scene catalog: batch upsert (per-record errors, like the CLI), read, delete, lineage."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Annotated

from fastapi import APIRouter, Path

from api.errors import ApiError, error_responses, record_details
from api.routes.deps import Service, ServiceDep
from api.routes.views import lineage_public, scene_public
from api.schemas import LineagePublic, SceneDeletedPublic, ScenePublic, ScenesUpsertPublic, ScenesUpsertRequest
from api.security import ReadAccess, WriteAccess
from indexer.catalog import Inline
from indexer.pipeline import IndexOptions, IndexReport, delete_scenes, index_catalog
from indexer.schema import ID_PATTERN
from search.consent import now_utc

router = APIRouter(prefix="/v1/scenes", tags=["scenes"])
SceneId = Annotated[str, Path(pattern=ID_PATTERN, examples=["scn-0001"])]


def _ingest(service: Service, body: ScenesUpsertRequest) -> IndexReport:
    location = service.store.location
    # media named by API clients must already lie inside the index folder; an index on object storage takes
    # text-only scenes over the API (media are indexed by `visual-intent index` where the files are)
    db = location.local_path if location.is_local else pathlib.Path(tempfile.gettempdir()) / "visual-intent-no-media"
    options = IndexOptions(
        db=location,
        strict=body.strict,
        text_model=service.engine.text.id,
        use_clip=service.engine.clip is not None,
        media_root=db,
        progress=False,
        chunk_size=max(1, len(body.scenes)),  # one batch, one transaction: searches see it all at once
        live=True,  # costs what the batch costs: no index rebuild (the serving snapshot takes it as a delta)
    )
    return index_catalog(options, Inline("request", body.scenes, base=db), encoders=service.encoders())


@router.post(
    "",
    summary="Upsert a batch of scenes",
    responses=error_responses(400, 401, 403, 409, 413, 422, 500),
)
def upsert_scenes(body: ScenesUpsertRequest, service: ServiceDep, _: WriteAccess) -> ScenesUpsertPublic:
    """Each record is validated like a catalog line; invalid ones are listed in `rejected` (with their number
    in the batch, field and reason) and the rest are written in one transaction. With `strict`, any invalid
    record rejects the whole batch with 422 and nothing is written. Searches see the batch all at once."""
    limit = service.settings.max_batch_records
    if len(body.scenes) > limit:
        raise ApiError(413, "payload_too_large", f"a batch holds at most {limit} scenes, got {len(body.scenes)}")
    report = service.write("upsert_scenes", lambda: _ingest(service, body))
    rejected_lines = {error.line for error in report.errors}
    accepted = [str(item.get("scene_id")) for n, item in enumerate(body.scenes, 1) if n not in rejected_lines]
    return ScenesUpsertPublic(
        accepted=accepted,
        rejected=record_details(report.errors),
        changes=report.changes.to_list(),
        lineage_gaps=report.lineage_gaps,
        index_versions=service.written_versions(),
    )


@router.get("/{scene_id}", summary="One scene with its shots", responses=error_responses(401, 403, 404, 422))
def get_scene(scene_id: SceneId, service: ServiceDep, granted: ReadAccess) -> ScenePublic:
    """A scene whose cameo consent does not cover search is visible to admin keys only (404 for others)."""
    snap, now = service.snapshot, now_utc()
    scene = scene_public(snap, scene_id, now)
    if scene is None or ("admin" not in granted and not snap.scene_eligible(scene_id, "search", now)):
        raise ApiError(404, "not_found", f"no scene '{scene_id}' in the index")
    return scene


@router.delete(
    "/{scene_id}", summary="Delete a scene and its shots", responses=error_responses(401, 403, 404, 422, 500)
)
def delete_scene(scene_id: SceneId, service: ServiceDep, _: WriteAccess) -> SceneDeletedPublic:
    """Remixes of a deleted scene keep their parent id (lineage then starts at them)."""
    if scene_id not in service.snapshot.row:
        raise ApiError(404, "not_found", f"no scene '{scene_id}' in the index")
    removed = service.write("delete_scene", lambda: delete_scenes(service.store, [scene_id]))
    if not removed:
        raise ApiError(404, "not_found", f"no scene '{scene_id}' in the index")
    return SceneDeletedPublic(scene_id=scene_id, deleted=True, index_versions=service.written_versions())


@router.get(
    "/{scene_id}/lineage", summary="Remix ancestors and descendants", responses=error_responses(401, 403, 404, 422)
)
def get_lineage(scene_id: SceneId, service: ServiceDep, granted: ReadAccess) -> LineagePublic:
    """Scenes not eligible for search are left out of the lineage, except for admin keys."""
    lineage = lineage_public(service.snapshot, scene_id, now_utc(), show_all="admin" in granted)
    if lineage is None:
        raise ApiError(404, "not_found", f"no scene '{scene_id}' in the index")
    return lineage
