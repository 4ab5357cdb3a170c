"""Hostile images through a real server: each gets its 4xx and stable code, on both the
probe of ``/verify`` (base64 JSON) and enrolment (multipart), and the server's memory stays
bounded over the whole corpus, sent again and again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import b64, one_face_jpeg, scale
from tests.reliability.apps import BOTH, error_code
from tests.reliability.hostile import LIMITS, corpus, zip_of
from tests.servers import Served, peak_resident_bytes, reset_peak, resident_bytes, serving

MiB = 2**20
PASSES = scale(3, 20)  # after one warm-up pass
MAX_GROWTH = 64 * MiB  # resident memory after the passes vs before them
MAX_PEAK_OVER = 300 * MiB  # the most the corpus may add at any moment (a bomb would be GBs)


@pytest.fixture(scope="module")
def one_face(test_pack: Path, insightface_images: Path) -> bytes:
    return one_face_jpeg(insightface_images, test_pack)


def _env() -> dict[str, str]:
    keys = [{"name": "both", "key": BOTH, "scopes": ["recognize", "manage"]}]
    return {
        **{f"FACEREC_{k.upper()}": str(v) for k, v in LIMITS.items()},
        "FACEREC_API_KEYS": json.dumps(keys),
        "FACEREC_LOG_LEVEL": "warning",  # no access log: the corpus is thousands of requests
    }


@pytest.fixture(scope="module")
def served(test_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(
        test_pack, tmp_path_factory.mktemp("hostile-data"), _env(), verbose=True
    ) as running:
        running.http.headers["X-API-Key"] = BOTH
        yield running


def test_hostile_corpus_through_a_real_server(
    served: Served, tmp_path: Path, one_face: bytes
) -> None:
    items = corpus(one_face)
    names = [item.name for item in items]
    assert len(set(names)) == len(names)
    http = served.http
    identity = http.post("/identities", json={"name": "probe target"}).json()["id"]
    enrolled = http.post(f"/identities/{identity}/faces", files={"image": ("f.jpg", one_face)})
    assert enrolled.status_code == 201, enrolled.text

    def one_pass() -> list[str]:
        wrong = []
        for item in items:
            answers = (
                http.post("/verify", json={"image": b64(item.data), "identity_id": identity}),
                http.post(f"/identities/{identity}/faces", files={"image": ("x", item.data)}),
            )
            for route, r in zip(("verify", "enrol"), answers, strict=True):
                if (r.status_code, error_code(r)) != (item.status, item.code):
                    wrong.append(f"{item.name} via {route}: {r.status_code} {r.text[:200]}")
        return wrong

    pid = served.process.pid
    start = resident_bytes(pid)
    assert one_pass() == []  # warm-up: allocator pools, lazy imports, model buffers
    before = resident_bytes(pid)
    peak_reset = reset_peak(pid)
    for _ in range(PASSES):
        assert one_pass() == []
    after = resident_bytes(pid)
    peak = peak_resident_bytes(pid)
    # the server is still whole: a real face still verifies against its enrolment
    same = http.post("/verify", json={"image": b64(one_face), "identity_id": identity})
    assert same.status_code == 200 and same.json()["match"] is True
    assert http.get("/identities").json()["items"][0]["face_count"] == 1  # nothing enrolled
    figures = {
        "hostile_images": len(items),
        "routes": 2,
        "passes_measured": PASSES,
        "requests": len(items) * 2 * (PASSES + 1),
        "rss_before_warm_up_mib": round(start / MiB, 1),
        "rss_before_mib": round(before / MiB, 1),
        "rss_after_mib": round(after / MiB, 1),
        "growth_mib": round((after - before) / MiB, 1),
        "peak_mib": round(peak / MiB, 1) if peak_reset else None,
        "by_code": {
            code: sum(i.code == code for i in items) for code in sorted({i.code for i in items})
        },
    }
    (tmp_path / "hostile-figures.json").write_text(json.dumps(figures, indent=2))
    print(f"\nhostile figures: {json.dumps(figures)}")
    assert after - before < MAX_GROWTH, figures
    if peak_reset:
        assert peak - before < MAX_PEAK_OVER, figures


def test_a_polyglot_is_read_as_its_image_only(served: Served, one_face: bytes) -> None:
    """A face JPEG with a ZIP and HTML appended embeds exactly as the JPEG alone."""
    trailer = zip_of("x.html", b"<script>alert(1)</script>") + b"<html></html>"
    plain = served.http.post("/embed", json={"image": b64(one_face)}).json()
    poly = served.http.post("/embed", json={"image": b64(one_face + trailer)}).json()
    assert plain["faces_found"] == poly["faces_found"] == 1
    assert plain["faces"][0]["embedding"] == poly["faces"][0]["embedding"]
