"""Cameo consent: grant or replace a persona's consent, and revoke it (withheld from searches before the
revocation is even committed; see `search.publisher`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.errors import error_responses
from api.routes.deps import Service, ServiceDep
from api.schemas import ConsentPublic, ConsentRequest
from api.security import AdminAccess
from indexer.schema import ID_PATTERN, Consent
from search.consent import now_utc

router = APIRouter(prefix="/v1/consents", tags=["consents"])
PersonaId = Annotated[str, Path(pattern=ID_PATTERN, examples=["persona-ava"])]
ERRORS = error_responses(400, 401, 403, 413, 422, 500)


def _store(service: Service, consent: Consent) -> ConsentPublic:
    service.write("consent", lambda: service.engine.put_consents([consent]))
    return ConsentPublic(
        persona_id=consent.persona_id,
        scopes=list(consent.scopes),
        expires_at=consent.expires_at,
        revoked_at=consent.revoked_at,
        index_versions=service.written_versions(),
    )


@router.put("/{persona_id}", summary="Grant or replace a persona's consent", responses=ERRORS)
def put_consent(persona_id: PersonaId, body: ConsentRequest, service: ServiceDep, _: AdminAccess) -> ConsentPublic:
    """Replaces the persona's record (a revoked persona is re-enabled only by an explicit PUT)."""
    consent = Consent(persona_id=persona_id, scopes=sorted(set(body.scopes)), expires_at=body.expires_at)
    return _store(service, consent)


@router.post("/{persona_id}/revoke", summary="Revoke a persona's consent now", responses=ERRORS)
def revoke_consent(persona_id: PersonaId, service: ServiceDep, _: AdminAccess) -> ConsentPublic:
    """Scenes showing the persona leave search results and ads from the next request on; the revocation is
    recorded (with the time) even for a persona that had no consent record."""
    existing = service.snapshot.consents.get(persona_id)
    consent = Consent.model_validate(
        {
            "persona_id": persona_id,
            "scopes": sorted(existing.scopes) if existing else [],
            "expires_at": existing.expires_at if existing else None,
            "revoked_at": now_utc(),
        }
    )
    return _store(service, consent)
