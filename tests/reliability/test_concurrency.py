"""Concurrent reads and writes: no 5xx, no deleted identity returned, the index equals SQLite.

Two levels. The gallery itself (SQLite + FAISS in this process), hammered by threads that
enrol into and delete the same few identities with a tiny thread switch interval: the index
must end equal to SQLite, vector for vector (before the gallery's write lock, a delete racing
an enrolment left the deleted identity's vector searchable, in about half the runs). Then a
real server: /identify and /verify callers while other clients enrol, add faces to one
identity at once and delete identities; every delete's acknowledgement time is recorded, and
no request *started* after it may return that identity.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.errors import IdentityNotFound
from service.gallery.check import index_problems, store_problems
from service.gallery.gallery import FaissGallery
from tests.helpers import b64, noise_crops, scale, sqlite_count, sqlite_rows
from tests.servers import Server

D = 32


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so races that need an unlucky switch do happen."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _race(gallery: FaissGallery, seed: int) -> None:
    """Four threads enrol into four identities while a fifth deletes and replaces them."""
    ids = [gallery.create_identity(f"p{i}", None, {}).id for i in range(4)]
    lock = threading.Lock()

    def enrol(n: int) -> None:
        rng = np.random.default_rng(seed * 10 + n)
        for _ in range(300):
            with lock:
                identity = ids[int(rng.integers(len(ids)))]
            with contextlib.suppress(IdentityNotFound):  # deleted meanwhile: a 404
                gallery.add_faces(identity, rng.standard_normal((1, D), np.float32), [(1, 1, 1)])

    def churn() -> None:
        rng = random.Random(seed)
        for _ in range(30):
            with lock:
                identity = ids.pop(rng.randrange(len(ids)))
            gallery.delete_identity(identity)
            fresh = gallery.create_identity("fresh", None, {}).id
            with lock:
                ids.append(fresh)

    workers = [threading.Thread(target=enrol, args=(n,)) for n in range(4)]
    workers.append(threading.Thread(target=churn))
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def test_index_follows_sqlite_under_racing_writes(tmp_path: Path, fast_switching: None) -> None:
    for round_ in range(scale(3, 20)):
        gallery = FaissGallery(tmp_path / str(round_), "r18:test", D)
        try:
            _race(gallery, round_)
            assert index_problems(gallery) == [], f"round {round_}"
        finally:
            gallery.close()
        assert store_problems(tmp_path / str(round_) / "gallery.sqlite3") == []


class Calls:
    """Every request's status, and when each delete was acknowledged."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.deleted_at: dict[str, float] = {}
        self.late: list[str] = []  # identities returned after their delete was acknowledged
        self.lock = threading.Lock()

    def record(self, r: httpx.Response) -> None:
        with self.lock:
            self.statuses[r.status_code] += 1

    def acked_before(self, identity: str, started: float) -> bool:
        acked = self.deleted_at.get(identity)
        return acked is not None and acked < started


def _enrol(c: httpx.Client, calls: Calls, name: str, crop: bytes) -> str:
    r = c.post("/identities", json={"name": name})
    calls.record(r)
    identity: str = r.json()["id"]
    r = c.post(f"/identities/{identity}/faces", json={"image": [b64(crop)], "aligned": True})
    calls.record(r)
    assert r.status_code == 201, r.text
    return identity


def test_no_5xx_and_no_deleted_identity_under_concurrent_writes(
    test_pack: Path, tmp_path: Path
) -> None:
    crops = noise_crops(scale(400, 1500), seed=1)  # 0-11 first, 12-71 shared, then new ones
    calls = Calls()
    stop = threading.Event()
    seconds = scale(8, 40)
    with Server(test_pack, tmp_path / "data", threads=1) as server:
        server.start()
        with server.client() as c:
            first = [_enrol(c, calls, f"p{i}", crops[i]) for i in range(12)]
        crop_of = {identity: crops[i] for i, identity in enumerate(first)}
        targets = list(first)  # what searchers ask about: enrolled, some to be deleted

        def search() -> None:
            rng = random.Random(threading.get_ident())
            with server.client() as c:
                while not stop.is_set():
                    identity = rng.choice(targets)
                    image = b64(crop_of[identity])
                    started = time.monotonic()
                    if rng.random() < 0.7:
                        r = c.post("/identify", json={"image": image, "aligned": True, "top_k": 5})
                        calls.record(r)
                        returned = [
                            cand["identity_id"]
                            for face in (r.json()["faces"] if r.status_code == 200 else [])
                            for cand in face["candidates"]
                        ]
                    else:
                        r = c.post(
                            "/verify",
                            json={"image": image, "identity_id": identity, "aligned": True},
                        )
                        calls.record(r)
                        returned = [identity] if r.status_code == 200 else []
                    for found in returned:
                        if calls.acked_before(found, started):
                            calls.late.append(found)

        def delete() -> None:
            with server.client() as c:
                for identity in first[::2]:
                    time.sleep(seconds / 8)
                    r = c.delete(f"/identities/{identity}")
                    calls.record(r)
                    if r.status_code == 204:
                        calls.deleted_at[identity] = time.monotonic()

        def enrol_and_race(n: int) -> None:
            with server.client() as c:
                k = 100 + n
                while not stop.is_set():
                    crop = crops[min(k, len(crops) - 1)]
                    identity = _enrol(c, calls, f"new{k}", crop)
                    crop_of[identity] = crop
                    targets.append(identity)
                    k += 2

        with server.client() as c:
            shared = _enrol(c, calls, "shared", crops[12])

        def add_to_shared(n: int) -> None:
            with server.client() as c:
                k = 13 + 30 * n
                while not stop.is_set() and k < 13 + 30 * n + 30:
                    r = c.post(
                        f"/identities/{shared}/faces",
                        json={"image": [b64(crops[k])], "aligned": True},
                    )
                    calls.record(r)
                    k += 1

        threads = [threading.Thread(target=search) for _ in range(4)]
        threads += [threading.Thread(target=delete)]
        threads += [threading.Thread(target=enrol_and_race, args=(n,)) for n in range(2)]
        threads += [threading.Thread(target=add_to_shared, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=120)

        # the index the server searches equals SQLite: counts, and the shared identity's
        # template (written by two clients at once) gives the similarity SQLite's does
        searchable = sqlite_count(
            server.data, "SELECT COUNT(*) FROM identities WHERE template IS NOT NULL"
        )
        with server.client() as c:
            assert c.get("/info").json()["gallery_size"] == searchable
            query = c.post("/embed", json={"image": b64(crops[13]), "aligned": True})
            embedding = np.asarray(query.json()["faces"][0]["embedding"], np.float32)
            (blob,) = sqlite_rows(
                server.data, f"SELECT template FROM identities WHERE id = '{shared}'"
            )[0]
            assert isinstance(blob, bytes)
            expected = float(embedding @ np.frombuffer(blob, np.float32))
            r = c.post("/identify", json={"image": b64(crops[13]), "aligned": True, "top_k": 100})
            got = {x["identity_id"]: x["similarity"] for x in r.json()["faces"][0]["candidates"]}
            assert got[shared] == pytest.approx(expected, abs=1e-4)
        assert store_problems(server.data / "gallery.sqlite3") == []

    total = sum(calls.statuses.values())
    errors = sum(n for status, n in calls.statuses.items() if status >= 500)
    print(
        f"\n{total} requests in {seconds} s ({dict(sorted(calls.statuses.items()))}), "
        f"{errors} 5xx; {len(calls.deleted_at)} deletes acknowledged, "
        f"{len(calls.late)} identities returned after their delete"
    )
    assert errors == 0
    assert calls.late == []
    assert len(calls.deleted_at) == 6
    assert calls.statuses[200] >= 10  # searches did run alongside the writes
