"""The service never fetches a URL a client hands it: a local HTTP server holding a real face
sees no request, whatever field the URL comes in, and the API answers 4xx."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import b64
from tests.reliability.apps import error_code, running, settings_for


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    body: ClassVar[bytes] = b""

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def image_host(insightface_images: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on a free local port serving t1.jpg at any path; yields its base URL
    and the list of paths requested from it."""
    handler = type(
        "Handler", (_Counting,), {"hits": [], "body": (insightface_images / "t1.jpg").read_bytes()}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def client(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with running(settings_for(test_pack, tmp_path_factory.mktemp("url-data"))) as c:
        yield c


def test_image_urls_are_never_fetched(
    client: TestClient, image_host: tuple[str, list[str]], insightface_images: Path
) -> None:
    base, hits = image_host
    url = f"{base}/face.jpg"
    face = b64((insightface_images / "t1.jpg").read_bytes())
    identity = client.post("/identities", json={"name": "u", "metadata": {"photo": url}})
    assert identity.status_code == 201  # a URL as data is stored as data, never followed
    faces = f"/identities/{identity.json()['id']}/faces"
    attempts = [
        ("/embed", {"json": {"image": url}}),
        ("/identify", {"json": {"image": url}}),
        ("/verify", {"json": {"image": face, "image2": url}}),
        ("/verify", {"json": {"image": url, "identity_id": identity.json()["id"]}}),
        (faces, {"json": {"image": [url]}}),
        ("/embed", {"json": {"image": f"data:text/uri-list,{url}"}}),
        ("/embed", {"json": {"image_url": url}}),
        ("/embed", {"json": {"image": {"url": url}}}),
        ("/identify", {"json": {"image": face, "url": url}}),
        ("/embed", {"files": {"image": (None, url.encode())}}),  # a multipart text field
        ("/embed", {"data": {"image": url}}),  # an urlencoded form
        ("/embed", {"files": {"image": ("link.url", url.encode(), "text/uri-list")}}),
        (faces, {"files": {"image": ("x.html", f'<img src="{url}">'.encode(), "text/html")}}),
        ("/embed", {"content": url.encode(), "headers": {"Content-Type": "text/uri-list"}}),
    ]
    answers = []
    for path, kwargs in attempts:
        response = client.post(path, **kwargs)  # type: ignore[arg-type]
        answers.append((path, response.status_code, error_code(response)))
        assert 400 <= response.status_code < 500, (path, kwargs, response.text)
    assert hits == [], hits
    # the control: the host does answer, so silence above means nothing was asked of it
    assert httpx.get(url).status_code == 200 and hits == ["/face.jpg"]
    print(f"\nURL attempts: {len(attempts)}, requests the image host saw from the service: 0")
    print("\n".join(f"  {p} → {s} {c}" for p, s, c in answers))
