"""Remix families: trending and largest families with their lineage metrics (`search/families.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError, error_responses
from api.routes.deps import ServiceDep
from api.schemas_trust import FamiliesPublic, FamilyPublic
from api.security import ReadAccess
from indexer.schema import utc
from search.consent import now_utc
from search.families import DEFAULT_WINDOW_DAYS, family_table, top_families


def _instant(text: str | None) -> datetime | None:
    """An ISO 8601 date-time (naive = UTC); anything else is a 422, never a number read as epoch seconds."""
    if text is None:
        return None
    try:
        return utc(datetime.fromisoformat(text.upper()))
    except ValueError:
        raise ApiError(
            422, "invalid_request", "as_of must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z"
        ) from None


router = APIRouter(prefix="/v1", tags=["lineage"])
Sort = Literal["velocity", "size", "depth", "virality", "mutation", "recent"]


class FamiliesQuery(BaseModel):
    """Query parameters of `GET /v1/families`; unknown parameters are rejected."""

    model_config = ConfigDict(extra="forbid")

    sort: Sort = Field(default="velocity", description="velocity = remixes per day in the window.")
    limit: int = Field(default=20, ge=1, le=500)
    min_size: int = Field(default=2, ge=1, description="Smallest family listed (1 = every scene).")
    window_days: float = Field(default=DEFAULT_WINDOW_DAYS, gt=0, le=3650)
    as_of: str | None = Field(
        default=None,
        description="End of the velocity window (ISO 8601). Default: newest scene.",
        json_schema_extra={"format": "date-time"},
    )


@router.get("/families", summary="Remix families ranked by a lineage metric", responses=error_responses(401, 403, 422))
def list_families(service: ServiceDep, granted: ReadAccess, query: Annotated[FamiliesQuery, Query()]) -> FamiliesPublic:
    """Scenes not eligible for search are left out of every family (their remixes hang from the nearest
    visible ancestor), except for admin keys."""
    snap = service.snapshot
    visible = None if "admin" in granted else snap.eligible("search", now_utc())
    table = family_table(snap, visible, _instant(query.as_of), query.window_days)
    families = top_families(snap, table, query.sort, query.limit, query.min_size)
    return FamiliesPublic(
        sort=query.sort,
        as_of=str(np.datetime_as_string(table.as_of, unit="s")) + "Z",
        window_days=query.window_days,
        families=[FamilyPublic.model_validate(f.to_dict()) for f in families],
        index_versions=dict(snap.versions),
    )
