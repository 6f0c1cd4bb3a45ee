"""Remix families: trending and largest families with their lineage metrics (`search/families.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query

from api.errors import error_responses
from api.routes.deps import ServiceDep
from api.schemas_trust import FamiliesPublic, FamilyPublic
from api.security import ReadAccess
from indexer.schema import utc
from search.consent import now_utc
from search.families import DEFAULT_WINDOW_DAYS, family_table, top_families

router = APIRouter(prefix="/v1", tags=["lineage"])
Sort = Literal["velocity", "size", "depth", "virality", "mutation", "recent"]


@router.get("/families", summary="Remix families ranked by a lineage metric", responses=error_responses(401, 403, 422))
def list_families(
    service: ServiceDep,
    granted: ReadAccess,
    sort: Annotated[Sort, Query(description="velocity = remixes per day in the window.")] = "velocity",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    min_size: Annotated[int, Query(ge=1, description="Smallest family listed (1 = every scene).")] = 2,
    window_days: Annotated[float, Query(gt=0, le=3650)] = DEFAULT_WINDOW_DAYS,
    as_of: Annotated[datetime | None, Query(description="End of the velocity window. Default: newest scene.")] = None,
) -> FamiliesPublic:
    """Scenes not eligible for search are left out of every family (their remixes hang from the nearest
    visible ancestor), except for admin keys."""
    snap = service.snapshot
    visible = None if "admin" in granted else snap.eligible("search", now_utc())
    table = family_table(snap, visible, utc(as_of), window_days)
    families = top_families(snap, table, sort, limit, min_size)
    return FamiliesPublic(
        sort=sort,
        as_of=str(np.datetime_as_string(table.as_of, unit="s")) + "Z",
        window_days=window_days,
        families=[FamilyPublic.model_validate(f.to_dict()) for f in families],
        index_versions=dict(snap.versions),
    )
