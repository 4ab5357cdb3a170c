"""Overload: full batch queues answer 503 + Retry-After at once, and the service recovers.

A real server with tiny queues (``FACEREC_MAX_QUEUE=2``, batches of one) takes a burst of
concurrent requests over warm connections. The detector's batcher sheds /identify (full
images), the embedder's sheds aligned crops. The 503s must be fast — refused before any
decoding or model work, so their server-side time is a small fraction of a served request's
(read from the service's own latency histogram) — and carry ``Retry-After``. After the burst,
ordinary requests succeed again. An enrolment refused with 503 stores nothing: the faces
found afterwards are exactly those of the acknowledged enrolments.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.gallery.check import store_problems
from tests.reliability._server import Server, b64, noise_crops
from tests.reliability.conftest import scale

BURST = scale(40, 200)


@dataclass
class Reply:
    status: int
    seconds: float
    finished: float  # since the burst began
    retry_after: str | None
    body: str


@pytest.fixture(scope="module")
def one_face(insightface_images: Path) -> bytes:
    """A JPEG with one face: the largest face of t1.jpg with a margin around it."""
    import cv2
    import numpy as np

    image = cv2.imread(str(insightface_images / "t1.jpg"))
    crop = image[0:336, 804:1116]  # one face of t1.jpg with a margin, no other face
    ok, jpg = cv2.imencode(".jpg", crop)
    assert ok
    return bytes(np.asarray(jpg).tobytes())


@pytest.fixture(scope="module")
def server(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "FACEREC_MAX_QUEUE": "2",
        "FACEREC_DETECT_MAX_BATCH": "1",
        "FACEREC_EMBED_MAX_BATCH": "1",
        "FACEREC_MAX_FACES": "2",
    }
    with Server(test_pack, tmp_path_factory.mktemp("overload") / "data", env) as s:
        s.start()
        yield s


async def _burst(url: str, path: str, bodies: list[dict[str, object]]) -> list[Reply]:
    """Send every body at once over already-open connections; the replies, fastest first."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        await asyncio.gather(*(c.get("/health/live") for _ in bodies))  # warm connections
        began = time.monotonic()

        async def one(body: dict[str, object]) -> Reply:
            started = time.monotonic()
            r = await c.post(path, json=body)
            now = time.monotonic()
            return Reply(
                r.status_code, now - started, now - began, r.headers.get("retry-after"), r.text
            )

        replies = await asyncio.gather(*(one(b) for b in bodies))
    return sorted(replies, key=lambda r: r.finished)


def _server_seconds(http: httpx.Client, route: str, status: int) -> float:
    """Mean server-side time of ``route``'s responses with ``status``, from /metrics."""
    text = http.get("/metrics").text
    label = f'method="POST",route="{route}",status="{status}"'
    total = count = 0.0
    for line in text.splitlines():
        if label in line and line.startswith("facerec_request_seconds_sum"):
            total = float(line.split()[-1])
        if label in line and line.startswith("facerec_request_seconds_count"):
            count = float(line.split()[-1])
    assert count > 0, f"no {status} for {route} in /metrics"
    return total / count


def _check_shed(replies: list[Reply], stage: str) -> tuple[list[Reply], list[Reply]]:
    """Every reply a 200 or a 503 overloaded with Retry-After; ``stage``'s queue among those
    that shed (a full image needs room in both the detector's and the embedder's queue)."""
    shed = [r for r in replies if r.status == 503]
    served = [r for r in replies if r.status == 200]
    assert len(shed) + len(served) == len(replies), sorted({r.status for r in replies})
    assert len(shed) >= len(replies) // 2 and served
    for r in shed:
        assert r.retry_after is not None and int(r.retry_after) >= 1
        assert '"code":"overloaded"' in r.body and "queue is full" in r.body
    assert any(f"{stage} queue is full" in r.body for r in shed)
    return shed, served


def _figures(name: str, shed: list[Reply], served: list[Reply], server_503: float) -> str:
    return (
        f"{name}: {len(shed)} × 503 of {len(shed) + len(served)}; first 503 after "
        f"{1000 * shed[0].finished:.0f} ms; 503 latency median "
        f"{1000 * statistics.median(r.seconds for r in shed):.0f} ms (server side "
        f"{1000 * server_503:.1f} ms), 200 latency median "
        f"{1000 * statistics.median(r.seconds for r in served):.0f} ms"
    )


def test_detector_queue_sheds_load_at_once_and_recovers(server: Server, one_face: bytes) -> None:
    image = b64(one_face)
    replies = asyncio.run(_burst(server.url, "/identify", [{"image": image}] * BURST))
    shed, served = _check_shed(replies, "detect")
    with server.client() as http:
        server_503 = _server_seconds(http, "/identify", 503)
        server_200 = _server_seconds(http, "/identify", 200)
        print("\n" + _figures("detector", shed, served, server_503))
        # refused before any decoding or model work: a small fraction of a served request.
        # (Seen from the client, a 503 also waits for the server's event loop to reach it
        # among the burst's requests: printed, not asserted, on a shared two-core machine.)
        assert server_503 < server_200 / 10
        # the load is gone: ordinary requests are served again, one after the other
        recovered = time.monotonic()
        for _ in range(3):
            r = http.post("/identify", json={"image": image})
            assert r.status_code == 200, r.text
            assert len(r.json()["faces"]) == 1
        print(f"recovered: 3/3 requests served, {time.monotonic() - recovered:.2f} s after")
        assert 'facerec_queue_depth{model="detect"} 0.0' in http.get("/metrics").text


def test_embedder_queue_sheds_load_at_once_and_recovers(server: Server) -> None:
    crops = [{"image": b64(c), "aligned": True} for c in noise_crops(BURST, seed=5)]
    replies = asyncio.run(_burst(server.url, "/embed", crops))
    shed, served = _check_shed(replies, "embed")
    with server.client() as http:
        server_503 = _server_seconds(http, "/embed", 503)
        print("\n" + _figures("embedder", shed, served, server_503))
        assert server_503 < _server_seconds(http, "/embed", 200) / 10
        for body in crops[:3]:
            assert http.post("/embed", json=body).status_code == 200
        assert 'facerec_queue_depth{model="embed"} 0.0' in http.get("/metrics").text


def test_an_enrolment_refused_with_503_stores_nothing(server: Server) -> None:
    """Enrolments of two images each, in a burst: the refused ones leave no face behind,
    not even the image whose embedding got through before its sibling was refused."""
    with server.client() as http:
        identity = http.post("/identities", json={"name": "burst"}).json()["id"]
    images = noise_crops(2 * BURST, seed=7)
    bodies: list[dict[str, object]] = [
        {"image": [b64(images[2 * i]), b64(images[2 * i + 1])], "aligned": True}
        for i in range(BURST)
    ]
    replies = asyncio.run(_burst(server.url, f"/identities/{identity}/faces", bodies))
    statuses = sorted({r.status for r in replies})
    assert set(statuses) <= {201, 503}, statuses
    acked = [r for r in replies if r.status == 201]
    refused = len(replies) - len(acked)
    assert acked and refused
    acked_faces = {f["id"] for r in acked for f in json.loads(r.body)["faces"]}
    with server.client() as http:
        stored = {f["id"] for f in http.get(f"/identities/{identity}/faces").json()}
        assert http.get(f"/identities/{identity}").json()["face_count"] == len(stored)
    print(f"\nenrolment burst: {len(acked)} acknowledged, {refused} refused; {len(stored)} faces")
    assert stored == acked_faces and len(stored) == 2 * len(acked)
    assert store_problems(server.data / "gallery.sqlite3") == []
