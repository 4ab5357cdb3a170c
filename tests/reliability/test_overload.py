"""Overload: full batch queues answer 503 + Retry-After at once, and the service recovers.

A real server with tiny queues (``FACEREC_MAX_QUEUE=2``, batches of one) takes a burst of
concurrent requests over warm connections. The detector's batcher sheds /identify (full
images), the embedder's sheds aligned crops. The 503s carry ``Retry-After`` and must be fast:
refused before any decoding or model work, their server-side time (the service's own latency
histogram) is less than one model call, and a lone request sent while the burst's served
group photos still fill the detector's queue is refused in less time than one model call
takes (a queued request would wait for three). After the burst,
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
from tests.helpers import b64, noise_crops, one_face_jpeg, scale
from tests.servers import Server

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
    return one_face_jpeg(insightface_images)


@pytest.fixture(scope="module")
def server(mtcnn_test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # MTCNN, the slow detector: a group photo takes it a few hundred ms, long enough for the
    # burst's served requests to keep the detector's queue full while the probes are sent
    # (YuNet, the default, clears t1.jpg in about 12 ms and the queue empties first)
    env = {
        "FACEREC_MAX_QUEUE": "2",
        "FACEREC_DETECT_MAX_BATCH": "1",
        "FACEREC_EMBED_MAX_BATCH": "1",
        "FACEREC_MAX_FACES": "8",  # t1.jpg's six faces are within the limit
    }
    with Server(mtcnn_test_pack, tmp_path_factory.mktemp("overload") / "data", env, threads=1) as s:
        s.start()
        yield s


async def _burst(
    url: str, path: str, bodies: list[dict[str, object]], probe: dict[str, object]
) -> tuple[list[Reply], list[Reply]]:
    """Send every body at once over already-open connections; once the wave of refusals is
    over, send ``probe`` alone, one at a time, while the burst's served requests still fill
    the queues: sustained overload as a lone client sees it. Replies fastest first, probes."""
    limits = httpx.Limits(max_connections=len(bodies) + 1)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        await asyncio.gather(*(c.get("/health/live") for _ in range(len(bodies) + 1)))
        began = time.monotonic()

        async def one(body: dict[str, object]) -> Reply:
            started = time.monotonic()
            r = await c.post(path, json=body)
            now = time.monotonic()
            return Reply(
                r.status_code, now - started, now - began, r.headers.get("retry-after"), r.text
            )

        tasks = [asyncio.create_task(one(b)) for b in bodies]
        while sum(t.done() for t in tasks) < len(tasks) // 2:
            await asyncio.sleep(0.005)
        # the wave of refusals is over when no reply has come for 50 ms (served requests
        # end one model call apart)
        done, quiet = -1, time.monotonic()
        while time.monotonic() - quiet < 0.05:
            if sum(t.done() for t in tasks) != done:
                done, quiet = sum(t.done() for t in tasks), time.monotonic()
            await asyncio.sleep(0.005)
        probes: list[Reply] = []
        while sum(not t.done() for t in tasks) > 2 and len(probes) < 5:
            probes.append(await one(probe))
        replies = await asyncio.gather(*tasks)
    return sorted(replies, key=lambda r: r.finished), probes


def _drained(http: httpx.Client, limit: float = 30) -> float:
    """Seconds until every queue is empty again (the burst's last items run or skipped)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        depths = [
            float(line.split()[-1])
            for line in http.get("/metrics").text.splitlines()
            if line.startswith("facerec_queue_depth{")
        ]
        if depths and not any(depths):
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"queues not empty {limit} s after the burst")


def _model_seconds(http: httpx.Client, model: str) -> float:
    """Mean duration of one ``model`` call, from /metrics."""
    text = http.get("/metrics").text
    sums = [ln for ln in text.splitlines() if ln.startswith("facerec_batch_seconds_sum")]
    counts = [ln for ln in text.splitlines() if ln.startswith("facerec_batch_seconds_count")]
    total = next(float(ln.split()[-1]) for ln in sums if f'model="{model}"' in ln)
    count = next(float(ln.split()[-1]) for ln in counts if f'model="{model}"' in ln)
    return total / count


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


def _check_probes(probes: list[Reply], model_call: float) -> list[Reply]:
    """Lone requests during sustained overload are refused faster than one model call (a
    queued one would wait for the queue's two items and the call in progress)."""
    refused = [r for r in probes if r.status == 503]
    assert refused, [r.status for r in probes]
    assert statistics.median(r.seconds for r in refused) < model_call, [r.seconds for r in refused]
    return refused


def _figures(
    name: str,
    shed: list[Reply],
    served: list[Reply],
    probes: list[Reply],
    server_503: float,
    model_call: float,
) -> str:
    return (
        f"{name}: {len(shed)} × 503 of {len(shed) + len(served)}; first 503 after "
        f"{1000 * shed[0].finished:.0f} ms; in the burst 503 latency median "
        f"{1000 * statistics.median(r.seconds for r in shed):.0f} ms (server side "
        f"{1000 * server_503:.1f} ms), 200 latency median "
        f"{1000 * statistics.median(r.seconds for r in served):.0f} ms; lone requests during "
        f"the overload: 503 in {[round(1000 * r.seconds) for r in probes]} ms; one model call "
        f"{1000 * model_call:.0f} ms"
    )


def test_detector_queue_sheds_load_at_once_and_recovers(
    server: Server, one_face: bytes, insightface_images: Path
) -> None:
    body: dict[str, object] = {"image": b64(one_face)}
    group: dict[str, object] = {  # slow to detect; the two best faces embedded
        "image": b64((insightface_images / "t1.jpg").read_bytes()),
        "max_faces": 2,
    }
    replies, probes = asyncio.run(_burst(server.url, "/identify", [group] * BURST, body))
    shed, served = _check_shed(replies, "detect")
    with server.client() as http:
        model_call = _model_seconds(http, "detect")
        refused = _check_probes(probes, model_call)
        server_503 = _server_seconds(http, "/identify", 503)
        assert server_503 < model_call
        print("\n" + _figures("detector", shed, served, refused, server_503, model_call))
        # the load is gone: ordinary requests are served again, one after the other
        drained = _drained(http)
        for _ in range(3):
            r = http.post("/identify", json=body)
            assert r.status_code == 200, r.text
            assert len(r.json()["faces"]) == 1
        print(f"recovered: queues empty {drained:.2f} s after the burst, 3/3 requests served")


def test_embedder_queue_sheds_load_at_once_and_recovers(server: Server) -> None:
    crops = [{"image": b64(c), "aligned": True} for c in noise_crops(BURST + 1, seed=5)]
    replies, probes = asyncio.run(_burst(server.url, "/embed", crops[1:], crops[0]))
    shed, served = _check_shed(replies, "embed")
    with server.client() as http:
        model_call = _model_seconds(http, "embed")
        server_503 = _server_seconds(http, "/embed", 503)
        refused = [r for r in probes if r.status == 503]  # few: crops are quick to embed
        print("\n" + _figures("embedder", shed, served, refused, server_503, model_call))
        # on the server, a 503 takes less time than one model call (a queued request waits
        # for at least one)
        assert server_503 < model_call
        drained = _drained(http)
        for body in crops[:3]:
            assert http.post("/embed", json=body).status_code == 200
        print(f"recovered: queues empty {drained:.2f} s after the burst, 3/3 requests served")


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
    burst, probes = asyncio.run(
        _burst(server.url, f"/identities/{identity}/faces", bodies[1:], bodies[0])
    )
    replies = burst + probes  # a probe enrolment acknowledged is an enrolment too
    statuses = sorted({r.status for r in replies})
    assert set(statuses) <= {201, 503}, statuses
    acked = [r for r in replies if r.status == 201]
    refused = len(replies) - len(acked)
    assert refused  # (in a burst of 200, no two-image request may get both images in)
    acked_faces = {f["id"] for r in acked for f in json.loads(r.body)["faces"]}
    with server.client() as http:
        stored = {f["id"] for f in http.get(f"/identities/{identity}/faces").json()}
        assert http.get(f"/identities/{identity}").json()["face_count"] == len(stored)
        print(
            f"\nenrolment burst: {len(acked)} acknowledged, {refused} refused; "
            f"{len(stored)} faces stored"
        )
        assert stored == acked_faces and len(stored) == 2 * len(acked)
        assert store_problems(server.data / "gallery.sqlite3") == []
        # the load is gone: a two-image enrolment goes through
        _drained(http)
        r = http.post(f"/identities/{identity}/faces", json=bodies[0])
        assert r.status_code == 201, r.text
