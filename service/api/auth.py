"""API keys in ``X-API-Key`` with scopes: ``recognize`` (verify, identify, embed) and
``manage`` (identities).

Keys are compared in constant time (``hmac.compare_digest`` on their SHA-256 digests, against
every configured key, so timing reveals neither which key nor how much of it matched). A
missing or unknown key is 401; a known key without the route's scope is 403. With no key
configured the service runs open, and says so loudly at start. Keys never reach a log: only
their names do.

Each protected route declares its scope in the OpenAPI document, as the role list of its
security requirement (``security: [{"APIKeyHeader": ["manage"]}]``, OpenAPI 3.1), so clients
and the reliability suite read which key a route needs from ``/openapi.json``. A known key
with the scope then spends one token of its rate limit (:mod:`service.api.ratelimit`).
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
from service.api.ratelimit import RateLimiter
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
            (
                hashlib.sha256(k.key.get_secret_value().encode()).digest(),
                Principal(k.name, frozenset(k.scopes)),
            )
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

    # a default, not an Annotated[...] alias: the alias would name the local ``scope``, which
    # the postponed annotations of this module cannot resolve
    declared = Security(API_KEY_HEADER, scopes=[scope])

    async def dependency(request: Request, key: str | None = declared) -> Principal:
        ring: KeyRing = request.app.state.keyring
        principal = ring.authenticate(key)
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope")
        limiter: RateLimiter | None = getattr(request.app.state, "ratelimiter", None)
        if limiter is not None:
            limiter.take(principal.name)
        request.state.principal = principal
        return principal

    return dependency


Recognizer = Annotated[Principal, Depends(require_scope("recognize"))]
Manager = Annotated[Principal, Depends(require_scope("manage"))]
