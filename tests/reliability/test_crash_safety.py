"""``kill -9`` under load, then a restart on the same data: nothing acknowledged is lost.

A real ``facerec serve`` (FAISS backend) takes enrolments, second faces and deletions from
two clients at once; every 2xx is written in a ledger. The server is then killed with SIGKILL
at a kill point (after N acknowledgements; at a random moment mid-request; in a phase of
deletions; in long mode also while it starts and rebuilds its index) and started again on the
same data directory. Before it starts, ``facerec gallery check`` must find the file as the
crash left it whole. After each restart:

* every acknowledged identity and face is there, through the API and directly in SQLite;
  every acknowledged delete is gone from both;
* nothing is half-written: SQLite passes its integrity check, no orphan face, face counts,
  embeddings and templates agree with the faces (``store_problems``);
* the FAISS index equals SQLite: as many searchable identities as templates in SQLite, and a
  search with an enrolled face's crop finds its identity first at similarity 1.

CI runs 3 kill points; ``FACEREC_RELIABILITY_LONG=1`` runs 10.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.gallery.check import index_problems, store_problems
from service.gallery.gallery import FaissGallery
from service.gallery.store import stored_meta
from tests.helpers import b64, noise_crops, scale, sqlite_count, sqlite_rows
from tests.reliability._ledger import Ledger
from tests.reliability._workload import Crops, Mix, enrol_client
from tests.servers import Server

CYCLES = scale(3, 10)
KINDS = ["after_acks", "random", "deletes", "startup"]
CLIENTS = 2


@dataclass
class Cycle:
    kind: str
    acks: int
    identities: int
    faces: int
    found_identities: int
    found_faces: int
    unsure: int
    searched: int
    searchable: int


@pytest.fixture(scope="module")
def crops() -> list[bytes]:
    return noise_crops(scale(1500, 5000))


def _load_then_kill(
    server: Server, crops: Crops, ledger: Ledger, kind: str, rng: random.Random
) -> None:
    """Run the clients and kill the server at this cycle's kill point."""
    if kind == "startup":  # killed while loading models and rebuilding the index from SQLite
        server.stop()
        server.start(wait=False)
        time.sleep(rng.uniform(0.2, 1.5))
        server.kill()
        server.start()
        kind = "random"
    stop = threading.Event()
    unexpected: list[str] = []
    mix = Mix(delete_identity=0.3, delete_face=0.2) if kind == "deletes" else Mix()
    clients = [
        threading.Thread(
            target=enrol_client,
            args=(server.url, crops, ledger, stop, mix, rng.randrange(10**9), unexpected),
        )
        for _ in range(CLIENTS)
    ]
    for t in clients:
        t.start()
    if kind == "after_acks":
        target = ledger.acks + rng.randint(15, 40)
        deadline = time.monotonic() + 60
        while ledger.acks < target and time.monotonic() < deadline:
            time.sleep(0.002)
    else:
        time.sleep(rng.uniform(1.0, 3.0))
    server.kill()
    stop.set()
    for t in clients:
        t.join(timeout=60)
    assert unexpected == []


def _settle_unsure(http: httpx.Client, ledger: Ledger) -> None:
    """Requests cut short by the kill: take what the restarted server holds as the truth
    (whole or absent is checked by ``store_problems``), so later cycles check exactly."""
    for identity in sorted(ledger.unsure):
        r = http.get(f"/identities/{identity}/faces")
        if r.status_code == 404:
            ledger.identity_deleted(identity)
        else:
            assert r.status_code == 200, r.text
            known = ledger.faces.setdefault(identity, {})
            ledger.faces[identity] = {f["id"]: known.get(f["id"], -1) for f in r.json()}
    ledger.unsure.clear()


def _check(
    server: Server, ledger: Ledger, crops: list[bytes], kind: str, rng: random.Random
) -> Cycle:
    problems = store_problems(server.data / "gallery.sqlite3")
    assert problems == [], problems
    in_sqlite: dict[str, set[str]] = {}
    for identity, face in sqlite_rows(
        server.data,
        "SELECT i.id, f.id FROM identities i LEFT JOIN faces f ON f.identity_seq = i.seq",
    ):
        in_sqlite.setdefault(str(identity), set())
        if face is not None:
            in_sqlite[str(identity)].add(str(face))
    searchable = sqlite_count(
        server.data, "SELECT COUNT(*) FROM identities WHERE template IS NOT NULL"
    )
    with server.client() as http:
        unsure = ledger.cut
        ledger.cut = 0
        _settle_unsure(http, ledger)
        found_identities = found_faces = 0
        for identity, faces in ledger.faces.items():
            assert in_sqlite.get(identity) == set(faces), f"SQLite lost writes to {identity}"
            r = http.get(f"/identities/{identity}/faces")
            assert r.status_code == 200, f"acknowledged identity {identity}: {r.status_code}"
            assert {f["id"] for f in r.json()} == set(faces)
            found_identities += 1
            found_faces += len(faces)
        for identity in ledger.deleted:
            assert identity not in in_sqlite, f"deleted identity {identity} is back in SQLite"
            assert http.get(f"/identities/{identity}").status_code == 404
        assert http.get("/info").json()["gallery_size"] == searchable
        single = ledger.single_faced()
        probe = sorted(single)[-4:] + rng.sample(sorted(single), min(len(single), 6))
        for identity in dict.fromkeys(probe):
            r = http.post(
                "/identify",
                json={"image": b64(crops[single[identity]]), "aligned": True, "top_k": 3},
            )
            assert r.status_code == 200, r.text
            best = r.json()["faces"][0]["candidates"][0]
            assert best["identity_id"] == identity
            assert best["similarity"] > 0.999
    return Cycle(
        kind,
        ledger.acks,
        len(ledger.faces),
        ledger.live_faces(),
        found_identities,
        found_faces,
        unsure,
        len(dict.fromkeys(probe)),
        searchable,
    )


def test_acknowledged_writes_survive_kill_9(
    test_pack: Path, tmp_path: Path, crops: list[bytes]
) -> None:
    rng = random.Random(8)
    ledger = Ledger()
    pool = Crops(crops)
    cycles: list[Cycle] = []
    with Server(test_pack, tmp_path / "data", threads=1) as server:
        server.start()
        for n in range(CYCLES):
            kind = KINDS[n % (len(KINDS) if CYCLES > 3 else 3)]
            _load_then_kill(server, pool, ledger, kind, rng)
            # the file as the crash left it (WAL not yet recovered by a writer) is whole
            crashed = subprocess.run(
                [sys.executable, "-m", "service", "gallery", "check"],
                env={**os.environ, "FACEREC_DATA_DIR": str(server.data)},
                capture_output=True,
                text=True,
            )
            assert crashed.returncode == 0, crashed.stdout + crashed.stderr
            server.start()
            cycles.append(_check(server, ledger, crops, kind, rng))
    print()
    for n, c in enumerate(cycles, 1):
        print(
            f"kill {n} ({c.kind}): {c.acks} writes acknowledged so far; {c.identities} live "
            f"identities / {c.faces} faces acknowledged, {c.found_identities} / {c.found_faces} "
            f"found after restart; {c.unsure} cut short by the kill; {c.searched} searched"
        )
    assert len(cycles) == CYCLES
    # the start-up path itself: the index rebuilt from this SQLite file equals it
    meta = stored_meta(tmp_path / "data" / "gallery.sqlite3")
    gallery = FaissGallery(tmp_path / "data", meta["model_id"], int(meta["embedding_size"]))
    try:
        assert index_problems(gallery) == []
        assert len(gallery.index) == cycles[-1].searchable
    finally:
        gallery.close()
    assert sum(c.unsure for c in cycles) >= 1  # the kills did land mid-request


def test_gallery_check_names_what_is_torn(tmp_path: Path) -> None:
    """``facerec gallery check`` passes a whole gallery and names each kind of damage."""
    import sqlite3

    import numpy as np
    from click.testing import CliRunner

    from service.cli import cli

    gallery = FaissGallery(tmp_path, "r18:test", 8)
    for name in ("a", "b", "c"):
        identity = gallery.create_identity(name, None, {}).id
        gallery.add_faces(identity, np.random.rand(2, 8).astype(np.float32), [(1, 1, 1)] * 2)
    gallery.close()
    runner = CliRunner()
    whole = runner.invoke(cli, ["gallery", "check", "--data-dir", str(tmp_path)])
    assert whole.exit_code == 0 and "consistent" in whole.output
    db = sqlite3.connect(tmp_path / "gallery.sqlite3")
    db.execute("UPDATE identities SET face_count = 5 WHERE name = 'a'")
    db.execute("UPDATE identities SET template = ? WHERE name = 'b'", (bytes(32),))
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("DELETE FROM identities WHERE name = 'c'")
    db.commit()
    db.close()
    torn = runner.invoke(cli, ["gallery", "check", "--data-dir", str(tmp_path)])
    assert torn.exit_code == 1
    assert "face_count 5, 2 faces stored" in torn.output
    assert "template differs from the mean of its faces" in torn.output
    assert "2 faces belong to no identity" in torn.output
