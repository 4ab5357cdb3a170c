"""API keys: every route × every kind of caller, constant-time comparison, no key in any log,
the per-key rate limit."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import Mount, Route

import service.api.routes as routes_package
from service.api.auth import KeyRing
from service.api.ratelimit import RateLimited, RateLimiter
from service.settings import Settings
from tests.reliability.apps import (
    BOTH,
    CALLERS,
    MANAGE,
    RECOGNIZE,
    SCOPES_OF,
    WRONG,
    api_keys,
    error_code,
    running,
    settings_for,
)
from tests.servers import serving

MISSING_ID = "0" * 32  # a well-formed identity / face id that does not exist
OPEN_PAGES = {"/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
# mounts outside the document: the web console's static files hold no data and need no key
# (the console calls the API with the user's key; service/api/console.py)
OPEN_MOUNTS = {"/console": "/console/"}


@pytest.fixture(scope="module")
def client(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with running(settings_for(test_pack, tmp_path_factory.mktemp("auth-data")), key=None) as c:
        yield c


def _route_module_operations() -> set[tuple[str, str]]:
    """(path, method) of every route in every module of ``service.api.routes``."""
    found = set()
    for info in pkgutil.iter_modules(routes_package.__path__):
        module = importlib.import_module(f"{routes_package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute):
                found.update((route.path, m) for m in route.methods)
    return found


def _declared_scope(operation: dict[str, Any]) -> str | None:
    """The scope a route's OpenAPI security requirement names; None for an open route."""
    requirements = operation.get("security")
    if not requirements:
        return None
    assert requirements == [{"APIKeyHeader": requirements[0]["APIKeyHeader"]}], requirements
    scopes = requirements[0]["APIKeyHeader"]
    assert len(scopes) == 1 and scopes[0] in ("recognize", "manage"), scopes
    return str(scopes[0])


def _call(client: TestClient, method: str, path: str, key: str | None) -> httpx.Response:
    url = path.replace("{identity_id}", MISSING_ID).replace("{face_id}", MISSING_ID)
    headers = {"X-API-Key": key} if key is not None else {}
    body = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
    return client.request(method, url, headers=headers, **body)


def test_every_route_with_every_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {
        (path, method.upper()): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    # nothing escapes the walk: every route of every route module is in the document, and
    # every other route of the app is one of FastAPI's documentation pages
    assert _route_module_operations() == set(documented)
    # FastAPI's own routes are Starlette Routes in older releases, not in newer ones
    routes = client.app.routes  # type: ignore[attr-defined]
    others = {r.path for r in routes if isinstance(r, Route) and not isinstance(r, APIRoute)}
    assert others == OPEN_PAGES
    mounts = {r.path for r in client.app.routes if isinstance(r, Mount)}  # type: ignore[attr-defined]
    assert mounts == set(OPEN_MOUNTS)

    walked = 0
    scopes_seen = set()
    for (path, method), operation in sorted(documented.items()):
        scope = _declared_scope(operation)
        scopes_seen.add(scope)
        if scope is not None:
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
        for caller, key in CALLERS.items():
            response = _call(client, method, path, key)
            walked += 1
            where = f"{method} {path} as {caller}: {response.status_code} {response.text[:200]}"
            if scope is None:
                assert response.status_code not in (401, 403), where
            elif caller in ("none", "wrong"):
                assert response.status_code == 401, where
                assert error_code(response) == "unauthorized", where
                assert response.headers["WWW-Authenticate"] == "ApiKey", where
            elif scope not in SCOPES_OF[caller]:
                assert response.status_code == 403, where
                assert error_code(response) == "forbidden", where
            else:
                assert response.status_code not in (401, 403) and response.status_code < 500, where
    for page in sorted(OPEN_PAGES) + sorted(OPEN_MOUNTS.values()):
        for key in CALLERS.values():
            response = client.get(page, headers={"X-API-Key": key} if key else {})
            assert response.status_code == 200, page
            walked += 1
    assert scopes_seen == {None, "recognize", "manage"}
    print(
        f"\nauth walk: {len(documented)} documented operations + {len(OPEN_PAGES)} docs pages "
        f"+ {len(OPEN_MOUNTS)} console × {len(CALLERS)} callers = {walked} requests"
    )
    assert walked == (len(documented) + len(OPEN_PAGES) + len(OPEN_MOUNTS)) * len(CALLERS)


def test_health_metrics_are_open_and_recognition_needs_a_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()["paths"]
    for path in ("/health/live", "/health/ready", "/info", "/metrics"):
        assert _declared_scope(spec[path]["get"]) is None, path
    assert _declared_scope(spec["/verify"]["post"]) == "recognize"
    assert _declared_scope(spec["/identities"]["post"]) == "manage"


@pytest.mark.parametrize("presented", [RECOGNIZE, MANAGE, BOTH, WRONG, "x", "y" * 4096, "é" * 20])
def test_every_key_is_compared_whatever_is_presented(
    presented: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same work whichever key matches, or none: one ``hmac.compare_digest`` per
    configured key, always on two 32-byte digests (equal lengths: no length short-cut)."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("service.api.auth.hmac.compare_digest", counting)
    ring = KeyRing(api_keys())
    try:
        principal = ring.authenticate(presented)
        assert principal.name == {RECOGNIZE: "app", MANAGE: "admin", BOTH: "both"}[presented]
    except Exception as exc:
        assert error_code_of(exc) == "unauthorized"
        assert presented not in (RECOGNIZE, MANAGE, BOTH)
    assert calls == [(32, 32)] * 3


def error_code_of(exc: Exception) -> str:
    return str(getattr(exc, "code", ""))


def test_the_key_ring_keeps_digests_not_keys() -> None:
    ring = KeyRing(api_keys())
    held = repr(vars(ring))
    for key in (RECOGNIZE, MANAGE, BOTH):
        assert key not in held
        assert hashlib.sha256(key.encode()).hexdigest() not in held  # bytes, not a hex echo


def test_keys_never_reach_a_log_in_process(
    client: TestClient, caplog: pytest.LogCaptureFixture, t1_bytes: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    for key in (BOTH, RECOGNIZE, MANAGE, WRONG):
        client.get("/identities", headers={"X-API-Key": key})
        client.post("/embed", headers={"X-API-Key": key}, files={"image": ("a.jpg", b"junk")})
    created = client.post("/identities", headers={"X-API-Key": MANAGE}, json={"name": "x"})
    assert created.status_code == 201
    client.delete(f"/identities/{created.json()['id']}", headers={"X-API-Key": MANAGE})
    text = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert caplog.records, "nothing was logged: the check would be empty"
    for key in (BOTH, RECOGNIZE, MANAGE, WRONG):
        assert key not in text


def test_settings_never_echo_a_key() -> None:
    secret = "short-secret"  # under 16 characters: refused
    with pytest.raises(ValidationError) as refused:
        Settings(api_keys=[{"name": "x", "key": secret, "scopes": ["manage"]}])  # type: ignore[list-item]
    assert "api_keys" in str(refused.value) and secret not in str(refused.value)
    settings = Settings(api_keys=api_keys())
    for text in (repr(settings), str(settings), json.dumps(settings.model_dump(mode="json"))):
        for key in (RECOGNIZE, MANAGE, BOTH):
            assert key not in text


@pytest.fixture(scope="module")
def t1_bytes(insightface_images: Path) -> bytes:
    return (insightface_images / "t1.jpg").read_bytes()


def test_keys_never_reach_a_real_servers_output(
    test_pack: Path, tmp_path: Path, t1_bytes: bytes
) -> None:
    """``facerec serve`` (uvicorn, access log on, log level debug): requests with good and
    wrong keys, an enrolment and a deletion; the output holds the requests, never a key."""
    keys = [k.model_dump(mode="json") | {"key": k.key.get_secret_value()} for k in api_keys()]
    env = {"FACEREC_LOG_LEVEL": "debug", "FACEREC_API_KEYS": json.dumps(keys)}
    with serving(test_pack, tmp_path / "data", env, verbose=True) as served:
        http = served.http
        for key in (BOTH, RECOGNIZE, MANAGE, WRONG):
            http.get("/identities", headers={"X-API-Key": key})
            http.post("/embed", headers={"X-API-Key": key}, files={"image": ("t.jpg", t1_bytes)})
        made = http.post("/identities", headers={"X-API-Key": MANAGE}, json={"name": "z"})
        assert made.status_code == 201, made.text
        gone = http.delete(f"/identities/{made.json()['id']}", headers={"X-API-Key": MANAGE})
        assert gone.status_code == 204
    output = served.output()  # complete: the server has stopped
    assert '"GET /identities HTTP/1.1" 401' in output and '"POST /embed HTTP/1.1" 200' in output
    assert "identity.delete" in output  # the audit logger's line, with the key's name
    for key in (BOTH, RECOGNIZE, MANAGE, WRONG):
        assert key not in output
    print(f"\nserver output: {len(output.splitlines())} lines, no key in any")


def test_rate_limit_per_key(test_pack: Path, tmp_path: Path) -> None:
    settings = settings_for(test_pack, tmp_path, rate_limit_per_s=0.5, rate_limit_burst=3)
    with running(settings, key=None) as c:
        manage = {"X-API-Key": MANAGE}
        assert [c.get("/identities", headers=manage).status_code for _ in range(3)] == [200] * 3
        refused = c.get("/identities", headers=manage)
        assert refused.status_code == 429 and error_code(refused) == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        # another key has its own bucket; open routes and refused callers spend no token
        assert c.get("/identities", headers={"X-API-Key": BOTH}).status_code == 200
        assert c.get("/health/live").status_code == 200
        assert c.get("/identities", headers={"X-API-Key": WRONG}).status_code == 401
        assert c.get("/identities", headers={"X-API-Key": RECOGNIZE}).status_code == 403


def test_token_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    limiter.take("b")  # its own bucket
    now[0] += 0.5  # one token back
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")
    now[0] += 60  # refills to the burst, not beyond
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")
    assert not RateLimiter(rate=0, burst=1).enabled
