"""Request limits, all from settings: body size (refused before it is all read), images per
request, faces per image, the per-request timeout."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.timeout import RequestTimeout
from tests.helpers import b64, one_face_jpeg
from tests.reliability.apps import BOTH, error_code, running, settings_for
from tests.reliability.hostile import face_tile
from tests.servers import Served, serving

KiB, MiB = 2**10, 2**20
BODY_LIMIT = 1 * MiB


@pytest.fixture(scope="module")
def one_face(test_pack: Path, insightface_images: Path) -> bytes:
    return one_face_jpeg(insightface_images, test_pack)


@pytest.fixture(scope="module")
def served(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    keys = [{"name": "both", "key": BOTH, "scopes": ["recognize", "manage"]}]
    env = {
        "FACEREC_MAX_BODY_BYTES": str(BODY_LIMIT),
        "FACEREC_MAX_IMAGE_BYTES": str(BODY_LIMIT // 2),
        "FACEREC_API_KEYS": json.dumps(keys),
    }
    with serving(
        test_pack, tmp_path_factory.mktemp("limits-data"), env, verbose=True
    ) as running_server:
        yield running_server


def _head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {BOTH}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def _read_response(sock: socket.socket, limit_s: float = 10.0) -> bytes:
    sock.settimeout(limit_s)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        try:
            part = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not part:
            break
        data += part
    return data


def test_a_chunked_body_is_refused_before_it_is_all_sent(served: Served) -> None:
    """64 MiB offered in 64 KiB chunks against a 1 MiB limit: the 413 comes back while the
    client is still sending, after little more than the limit (plus socket buffers)."""
    planned = 64 * MiB
    chunk = b"A" * (64 * KiB)
    sent = 0
    response = b""
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(_head("/embed", "Transfer-Encoding: chunked\r\n"))
        try:
            while sent < planned:
                readable, _, _ = select.select([sock], [], [], 0.002)
                if readable:
                    break
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection on us: it answered, then hung up
        response = _read_response(sock)
    status_line = response.split(b"\r\n", 1)[0]
    print(
        f"\nchunked: {sent / MiB:.2f} MiB of {planned / MiB:.0f} MiB sent when refused: "
        f"{status_line.decode(errors='replace')}"
    )
    assert status_line.startswith(b"HTTP/1.1 413"), response[:300]
    assert b'"payload_too_large"' in response
    assert sent < 16 * MiB, f"{sent} bytes went out before the refusal"


def test_a_huge_declared_length_is_refused_without_reading(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(_head("/identify", "Content-Length: 10000000000\r\n"))  # and no body at all
        started = time.monotonic()
        response = _read_response(sock, limit_s=10)
        waited = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 413"), response[:300]
    assert b'"payload_too_large"' in response
    assert waited < 5


def test_a_body_over_the_limit_over_httpx(served: Served) -> None:
    big = {"image": "A" * (BODY_LIMIT + 1)}
    refused = served.http.post("/embed", json=big, headers={"X-API-Key": BOTH})
    assert refused.status_code == 413 and error_code(refused) == "payload_too_large"
    assert served.http.get("/health/live").status_code == 200  # and it still serves


@pytest.fixture(scope="module")
def client(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(
        test_pack, tmp_path_factory.mktemp("limits-app"), max_images_per_request=3, max_faces=3
    )
    with running(settings) as c:
        yield c


def test_images_per_request(client: TestClient, one_face: bytes) -> None:
    identity = client.post("/identities", json={"name": "many"}).json()["id"]
    url = f"/identities/{identity}/faces"
    files = [("image", (f"{i}.jpg", one_face, "image/jpeg")) for i in range(4)]
    for response in (
        client.post(url, files=files),
        client.post(url, json={"image": [b64(one_face)] * 4}),
        client.post("/embed", files=files[:2]),
        client.post("/embed", json={"image": [b64(one_face)] * 2}),
        client.post("/verify", files=[files[0], files[1], ("image2", ("b.jpg", one_face))]),
    ):
        assert response.status_code == 413, response.text
        assert error_code(response) == "too_many_images", response.text
    assert client.get(f"/identities/{identity}").json()["face_count"] == 0
    accepted = client.post(url, files=files[:3])
    assert accepted.status_code == 201, accepted.text


def test_base64_in_a_multipart_text_field_up_to_the_image_limit(client: TestClient) -> None:
    """Starlette caps a text part at 1 MiB by default; here the cap is the image limit's."""
    import io
    import random

    from PIL import Image

    noise = Image.frombytes("RGB", (640, 640), random.Random(1).randbytes(640 * 640 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    data = out.getvalue()
    assert 1 * MiB < len(b64(data)) < 2 * MiB * 4 // 3  # over Starlette's default, under ours
    fine = client.post("/embed", files={"image": (None, "data:image/png;base64," + b64(data))})
    assert fine.status_code == 200 and fine.json()["faces_found"] == 0, fine.text
    over = client.post("/embed", files={"image": (None, "A" * (3 * MiB))})
    assert over.status_code == 413 and error_code(over) == "payload_too_large", over.text


def test_faces_per_image(client: TestClient, one_face: bytes) -> None:
    crowd = b64(face_tile(one_face, 2))  # four faces; the limit is three
    for path, body in (
        ("/embed", {"image": crowd}),
        ("/identify", {"image": crowd}),
        ("/embed", {"image": crowd, "max_faces": 1}),  # a client's smaller cut does not hide it
    ):
        refused = client.post(path, json=body)
        assert refused.status_code == 422 and error_code(refused) == "too_many_faces", refused.text
    two = b64(face_tile(one_face, 1))
    assert client.post("/embed", json={"image": two}).json()["faces_found"] == 1


def test_a_slow_request_gets_a_504_and_the_service_carries_on(
    mtcnn_test_pack: Path, tmp_path: Path, one_face: bytes
) -> None:
    settings = settings_for(mtcnn_test_pack, tmp_path, request_timeout_s=0.3)
    crowd = b64(face_tile(one_face, 4))  # 16 faces: seconds of MTCNN (the slow detector)
    aligned = b64(one_face_crop_112(one_face))
    with running(settings) as c:
        # the schema first: built on a CPU still busy with the abandoned detection, it may
        # itself take longer than this test's 0.3 s limit
        spec = c.get("/openapi.json").json()
        assert "504" in spec["paths"]["/identify"]["post"]["responses"]
        started = time.monotonic()
        slow = c.post("/identify", json={"image": crowd})
        took = time.monotonic() - started
        assert slow.status_code == 504, slow.text
        assert error_code(slow) == "request_timeout"
        assert took < 2.0, took  # answered at the limit, not when the work ended
        assert c.get("/health/live").status_code == 200
        # the batchers still serve once the abandoned detection has run out
        deadline = time.monotonic() + 30
        while True:
            light = c.post("/embed", json={"image": aligned, "aligned": True})
            if light.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert light.status_code == 200, light.text


def one_face_crop_112(face: bytes) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(face)).convert("RGB").resize((112, 112)).save(out, "PNG")
    return out.getvalue()


def test_a_timeout_after_the_response_started_closes_the_connection() -> None:
    sent: list[dict[str, object]] = []

    async def slow_stream(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await asyncio.sleep(5)

    async def collect(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    middleware = RequestTimeout(slow_stream, timeout_s=0.05)  # type: ignore[arg-type]
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(middleware({"type": "http", "method": "GET", "path": "/"}, receive, collect))  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start"]  # no second start, no 504 body
