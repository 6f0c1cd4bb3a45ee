"""API keys with scopes, sent in the `X-API-Key` header.

Scopes nest: `admin` includes `write`, which includes `read`. A missing or unknown key is a 401; a known
key without the scope is a 403. Keys are held only as SHA-256 digests and every presented key is compared
against all of them with `hmac.compare_digest`, so timing does not depend on which key (if any) matched.
Keys are never logged: `Settings.api_keys` has repr=False and errors never echo the header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from api.settings import Scope

API_KEY_HEADER = "X-API-Key"
IMPLIED: dict[Scope, frozenset[Scope]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin"}),
}
ALL_SCOPES: frozenset[Scope] = frozenset(IMPLIED["admin"])

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key configured in VISUAL_INTENT_API_KEYS; scopes: read < write < admin.",
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """Digests of the configured keys and their (expanded) scopes; `open` grants every scope to anyone."""

    def __init__(self, keys: Mapping[str, Sequence[Scope]], open_access: bool = False):
        self._entries = [(_digest(k), frozenset().union(*(IMPLIED[s] for s in v))) for k, v in keys.items()]
        self.open_access = open_access

    def scopes_for(self, key: str | None) -> frozenset[Scope] | None:
        """The scopes of `key`, or None when it is missing or unknown."""
        if self.open_access:
            return ALL_SCOPES
        if not key:
            return None
        presented = _digest(key)
        found: frozenset[Scope] | None = None
        for digest, scopes in self._entries:  # no early exit: same work whichever key matches
            if hmac.compare_digest(presented, digest):
                found = scopes
        return found


def get_keyring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keyring
    return ring


def require(scope: Scope) -> Callable[..., frozenset[Scope]]:
    """A dependency that lets the request through only with a key holding `scope`."""

    def check(
        keyring: Annotated[KeyRing, Depends(get_keyring)],
        key: Annotated[str | None, Depends(api_key_header)],
    ) -> frozenset[Scope]:
        scopes = keyring.scopes_for(key)
        if scopes is None:
            message = f"missing {API_KEY_HEADER} header" if not key else "unknown API key"
            raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "APIKey"})
        if scope not in scopes:
            raise ApiError(403, "forbidden", f"this API key lacks the '{scope}' scope")
        return scopes

    return check


ReadAccess = Annotated[frozenset[Scope], Depends(require("read"))]
WriteAccess = Annotated[frozenset[Scope], Depends(require("write"))]
AdminAccess = Annotated[frozenset[Scope], Depends(require("admin"))]
