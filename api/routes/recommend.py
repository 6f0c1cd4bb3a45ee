"""Recommend by example: POST /v1/recommend (scenes like some examples and unlike others)."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from pydantic import ValidationError

from api.errors import ApiError, error_responses
from api.routes.deps import Service, ServiceDep
from api.routes.uploads import error_details, reference_vector
from api.routes.views import search_public
from api.schemas import RecommendPublic, RecommendRequest
from api.security import ReadAccess
from api.settings import Scope
from search.engine import PRESETS, with_overrides
from search.recommend import STRATEGY, Examples, recommend

router = APIRouter(prefix="/v1", tags=["search"])
VARIANT = "full+collapse"


@router.post(
    "/recommend",
    summary="Scenes like the positive examples and unlike the negative ones",
    responses=error_responses(400, 401, 403, 404, 413, 422, 500),
)
def recommend_scenes(body: RecommendRequest, service: ServiceDep, granted: ReadAccess) -> RecommendPublic:
    """Strategy `average_vector` (as in Qdrant): query = avg(positive) + (avg(positive) - avg(negative)) over
    the examples' stored vectors, in the text space and (with CLIP) the shot space; an optional `query` text adds
    its encoding and drives the full-text and slot channels. Then it is a search: the same consent mask, filters,
    collapse, explanations and ads. The examples are never returned. An example that is unknown, or not eligible
    for `use` (except for admin keys), is a 404 `not_found` with the same message either way."""
    return _recommend(service, body, granted)


@router.post(
    "/recommend/image",
    summary="Recommend by example with a reference image too (multipart)",
    responses=error_responses(400, 401, 403, 404, 413, 422, 500),
)
def recommend_with_image(
    service: ServiceDep,
    granted: ReadAccess,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP reference image.")],
    request: Annotated[
        str,
        Form(
            max_length=20_000,
            description='RecommendRequest as JSON text, e.g. {"positive": ["scn-0068"], "k": 5}.',
        ),
    ],
) -> RecommendPublic:
    """As /v1/recommend, with the image's CLIP vector added to the shot-space query (visual channel and best
    shot). Needs an index built with CLIP: otherwise 422 `no_visual_channel`."""
    vector = reference_vector(service, image)
    try:
        body = RecommendRequest.model_validate_json(request)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "invalid recommend request", error_details(exc, "request")) from None
    return _recommend(service, body, granted, vector)


def _recommend(
    service: Service, body: RecommendRequest, granted: frozenset[Scope], image: np.ndarray | None = None
) -> RecommendPublic:
    options = with_overrides(PRESETS[VARIANT], collapse=body.collapse, ads_k=body.ads_k)
    started = time.perf_counter()
    response = recommend(
        service.engine,
        Examples(tuple(body.positive), tuple(body.negative)),
        text=body.query,
        sku=body.sku,
        use=body.use,
        k=body.k,
        options=options,
        filters=body.filters.to_filters() if body.filters else None,
        image_vector=image,
        any_example="admin" in granted,
    )
    took_ms = (time.perf_counter() - started) * 1000
    found = search_public(response, VARIANT, body.explain, took_ms)
    return RecommendPublic(**dict(found), positive=body.positive, negative=body.negative, strategy=STRATEGY)
