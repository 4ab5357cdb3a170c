"""API keys in ``X-API-Key`` with scopes: ``recognize`` (verify, identify, embed) and
``manage`` (identities).

Keys are compared in constant time (``hmac.compare_digest`` on their SHA-256 digests, against
every configured key, so timing reveals neither which key nor how much of it matched). A
missing or unknown key is 401; a known key without the route's scope is 403. With no key
configured the service runs open, and says so loudly at start. Keys never reach a log: only
their names do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from service.api.errors import ApiError
from service.settings import ApiKey, Scope

__all__ = ["KeyRing", "Principal", "require_scope"]

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; its scopes decide the routes"
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name, or ``anonymous`` in open mode."""

    name: str
    scopes: frozenset[str]


class KeyRing:
    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = [
            (hashlib.sha256(k.key.encode()).digest(), Principal(k.name, frozenset(k.scopes)))
            for k in keys
        ]

    @property
    def open(self) -> bool:
        return not self._keys

    def authenticate(self, presented: str | None) -> Principal:
        if self.open:
            return Principal("anonymous", frozenset({"recognize", "manage"}))
        if not presented:
            raise ApiError(401, "unauthorized", "missing X-API-Key header")
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        for stored, principal in self._keys:  # no early exit: same work whichever key matches
            if hmac.compare_digest(stored, digest):
                found = principal
        if found is None:
            raise ApiError(401, "unauthorized", "unknown API key")
        return found


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys that hold ``scope``."""

    async def dependency(
        request: Request, key: Annotated[str | None, Security(API_KEY_HEADER)]
    ) -> Principal:
        ring: KeyRing = request.app.state.keyring
        principal = ring.authenticate(key)
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
        request.state.principal = principal
        return principal

    return dependency


Recognizer = Annotated[Principal, Depends(require_scope("recognize"))]
Manager = Annotated[Principal, Depends(require_scope("manage"))]
