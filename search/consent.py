"""Cameo consent: the one rule every search path, variant list and ad creative goes through.

A scene is eligible for a use when every persona in its cameos has a consent record with that scope,
not expired and not revoked at `now`. No record means not eligible. Scenes without cameos are eligible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class ConsentState:
    persona_id: str
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, consent: Any) -> ConsentState:
        """The state of an `indexer.schema.Consent` record."""
        return cls(consent.persona_id, frozenset(consent.scopes), consent.expires_at, consent.revoked_at)


def stricter(a: ConsentState | None, b: ConsentState) -> ConsentState:
    """A state that allows only what both allow (no record allows nothing): the scopes both grant, the
    earlier expiry and the earlier revocation."""
    if a is None:
        return ConsentState(b.persona_id, frozenset(), None, None)
    return ConsentState(b.persona_id, a.scopes & b.scopes, _earlier(a.expires_at, b.expires_at),
                        _earlier(a.revoked_at, b.revoked_at))  # fmt: skip


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def persona_allows(consent: ConsentState | None, use: str, now: datetime) -> bool:
    if consent is None or use not in consent.scopes:
        return False
    if consent.revoked_at is not None and consent.revoked_at <= now:
        return False
    return consent.expires_at is None or consent.expires_at > now


def is_eligible(cameos: Iterable[str], use: str, consents: Mapping[str, ConsentState], now: datetime) -> bool:
    return all(persona_allows(consents.get(p), use, now) for p in cameos)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
