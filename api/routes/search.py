"""Scene search (JSON, or multipart with a reference image) and ad matching."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from pydantic import ValidationError

from api.errors import ApiError, error_responses
from api.routes.deps import Service, ServiceDep
from api.routes.uploads import error_details, filters_field, reference_vector
from api.routes.views import ad_public, ranked_ad_public, search_public
from api.schemas import (
    AdsMatchPublic,
    AdsMatchRequest,
    IntentFramePublic,
    SearchPublic,
    SearchRequest,
)
from api.security import ReadAccess
from indexer.schema import ID_PATTERN
from search.engine import PRESETS, SearchOptions, with_overrides

router = APIRouter(prefix="/v1", tags=["search"])
ERRORS = error_responses(400, 401, 403, 413, 422, 500)


def run_search(service: Service, body: SearchRequest, clip_query: np.ndarray | None = None) -> SearchPublic:
    options = with_overrides(
        PRESETS[body.variant],
        collapse=body.collapse,
        mmr_lambda=body.mmr_lambda,
        dwell_weight=body.dwell_weight,
        ads_k=body.ads_k,
        require_credentials=body.require_credentials or None,
    )
    if clip_query is not None and not body.query.strip("* "):
        options = with_overrides(options, channels=("clip",), intent=False)  # image only: the visual channel alone
    started = time.perf_counter()
    if body.min_version:
        service.engine.wait_for_version(body.min_version, service.settings.version_wait_s)
    response = service.engine.search(
        body.query,
        sku=body.sku,
        use=body.use,
        k=body.k,
        options=options,
        filters=body.filters.to_filters() if body.filters else None,
        clip_query=clip_query,
    )
    took_ms = (time.perf_counter() - started) * 1000
    return search_public(response, body.variant, body.explain, took_ms, reference_image=clip_query is not None)


@router.post(
    "/search",
    summary="Search scenes with a scenario query",
    responses=error_responses(400, 401, 403, 409, 413, 422, 500),
)
def search(body: SearchRequest, service: ServiceDep, _: ReadAccess) -> SearchPublic:
    """Parse the query into an intent frame, retrieve eligible scenes (consent is checked at request time),
    and match ads. Filters are structured values, validated here and applied as a row mask, never as SQL."""
    return run_search(service, body)


@router.post(
    "/search/image",
    summary="Search scenes with a reference image (multipart)",
    responses=error_responses(400, 401, 403, 413, 422, 500),
)
def search_image(
    service: ServiceDep,
    _: ReadAccess,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP reference image.")],
    query: Annotated[str, Form(max_length=500, description="Optional text; empty = the image alone.")] = "",
    sku: Annotated[str | None, Form(pattern=ID_PATTERN)] = None,
    use: Annotated[Literal["search", "ads"], Form()] = "search",
    k: Annotated[int, Form(ge=1, le=100)] = 10,
    explain: Annotated[bool, Form()] = False,
    filters: Annotated[str | None, Form(max_length=10_000, description="FiltersRequest as JSON text.")] = None,
) -> SearchPublic:
    """The image's CLIP vector drives the visual channel and the best-shot choice; any query text still
    drives the text channels. Needs an index built with CLIP: otherwise 422 `no_visual_channel`."""
    vector = reference_vector(service, image)
    try:
        body = SearchRequest(
            query=query.strip() or "*", sku=sku, use=use, k=k, explain=explain, filters=filters_field(filters)
        )
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "invalid search fields", error_details(exc)) from None
    return run_search(service, body, clip_query=vector)


@router.post("/ads/match", summary="Rank ads for an intent", responses=ERRORS)
def match_ads(body: AdsMatchRequest, service: ServiceDep, _: ReadAccess) -> AdsMatchPublic:
    """`intent` is the full matcher (frame, top scenes, relevance floor, bid); the other variants are the
    baselines used in experiments. Ads whose creatives lost their `ads` consent are never returned."""
    engine = service.engine
    if body.variant == "intent":
        options = SearchOptions(ads_k=body.k, require_credentials=body.require_credentials)
        response = engine.search(body.query, sku=body.sku, use="ads", k=5, options=options)
        return AdsMatchPublic(
            query=body.query,
            variant=body.variant,
            ads=[ad_public(ad) for ad in response.ads],
            frame=IntentFramePublic.model_validate(response.frame),
            index_versions=response.index_versions,
        )
    snap = engine.snapshot
    ranked = engine.rank_ads(body.query, sku=body.sku, variant=body.variant, k=body.k)
    entries = {ad.ad_id: ad for ad in snap.ads}
    return AdsMatchPublic(
        query=body.query,
        variant=body.variant,
        ads=[ranked_ad_public(ad_id, score, entries) for ad_id, score in ranked],
        index_versions=dict(snap.versions),
    )
