"""The app the security tests drive: the real test pack, a small gallery, API keys.

Everything is real (ONNX Runtime, SQLite, FAISS); only the keys and limits are the tests'.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import ApiKey, Settings

RECOGNIZE = "recognize-only-key-0123456789"
MANAGE = "manage-only-key-0123456789ab"
BOTH = "both-scopes-key-0123456789abc"
WRONG = "not-a-configured-key-012345"

# the five callers every protected route is tried with
CALLERS: dict[str, str | None] = {
    "none": None,
    "wrong": WRONG,
    "recognize": RECOGNIZE,
    "manage": MANAGE,
    "both": BOTH,
}
SCOPES_OF: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "wrong": frozenset(),
    "recognize": frozenset({"recognize"}),
    "manage": frozenset({"manage"}),
    "both": frozenset({"recognize", "manage"}),
}
KEY_NAMES = {RECOGNIZE: "app", MANAGE: "admin", BOTH: "both"}


def api_keys() -> list[ApiKey]:
    return [
        ApiKey(name="app", key=RECOGNIZE, scopes=["recognize"]),  # type: ignore[arg-type]
        ApiKey(name="admin", key=MANAGE, scopes=["manage"]),  # type: ignore[arg-type]
        ApiKey(name="both", key=BOTH, scopes=["recognize", "manage"]),  # type: ignore[arg-type]
    ]


def settings_for(pack: Path, data: Path, **overrides: Any) -> Settings:
    """Test settings: CPU, the test pack, small limits, three keys; ``overrides`` on top."""
    values: dict[str, Any] = {
        "pack": pack,
        "data_dir": data,
        "device": "cpu",
        "det_threshold": 0.7,
        "max_image_bytes": 2 * 2**20,
        "max_body_bytes": 4 * 2**20,
        "api_keys": api_keys(),
        **overrides,
    }
    return Settings(**values)


@contextmanager
def running(settings: Settings, key: str | None = BOTH) -> Iterator[TestClient]:
    """The app with its lifespan run (models loaded, gallery open), ``key`` sent by default."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        if key is not None:
            client.headers["X-API-Key"] = key
        yield client


def error_code(response: Any) -> str | None:
    """The stable ``error.code`` of an error response, or None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None
