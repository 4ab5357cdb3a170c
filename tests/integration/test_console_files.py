"""The console's files as the service serves them (no browser: tests/browser drives one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.console import CONSOLE_DIR
from service.app import create_app
from service.settings import Settings

FILES = sorted(p for p in CONSOLE_DIR.rglob("*") if p.is_file())


def _client(tmp_path: Path, **settings: object) -> TestClient:
    # no lifespan: static files need no model, and none is loaded
    return TestClient(create_app(Settings(data_dir=tmp_path, **settings)))  # type: ignore[arg-type]


def test_served_at_console_with_a_strict_policy(tmp_path: Path) -> None:
    client = _client(tmp_path)
    moved = client.get("/console", follow_redirects=False)
    assert moved.status_code in (307, 308) and moved.headers["location"].endswith("/console/")
    page = client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    for path in FILES:
        relative = path.relative_to(CONSOLE_DIR).as_posix()
        answer = client.get(f"/console/{relative}")
        assert answer.status_code == 200, relative
        assert answer.headers["x-content-type-options"] == "nosniff"
        if relative.endswith(".js"):  # ES modules need a JavaScript type
            assert "javascript" in answer.headers["content-type"], relative
    assert client.get("/console/../settings.py").status_code == 404
    # counted in the request metrics under the console's own route, not as unmatched
    metrics = client.get("/metrics").text
    assert 'route="/console",status="200"' in metrics


def test_outside_the_openapi_document_and_open(tmp_path: Path) -> None:
    client = _client(tmp_path, api_keys=[{"name": "k", "key": "k" * 16, "scopes": ["manage"]}])
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]
    assert client.get("/console/").status_code == 200  # no key: the files hold no data


def test_disabled_by_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _client(tmp_path, console=False).get("/console/").status_code == 404
    monkeypatch.setenv("FACEREC_CONSOLE", "false")
    assert Settings().console is False
    assert _client(tmp_path).get("/console/").status_code == 404
    monkeypatch.setenv("FACEREC_CONSOLE", "true")
    assert _client(tmp_path).get("/console/").status_code == 200


def test_nothing_from_elsewhere_and_no_markup_from_data() -> None:
    """No CDN, no framework download: every file the console loads is its own. API data goes
    into the page as text (textContent), never through innerHTML."""
    for path in FILES:
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
        assert not re.search(r"""import[^;]*from\s*["'](https?:)?//""", text), path
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path
        assert "document.write" not in text and "eval(" not in text, path
    index = (CONSOLE_DIR / "index.html").read_text()
    assert "<script>" not in index and " style=" not in index  # the policy forbids inline
