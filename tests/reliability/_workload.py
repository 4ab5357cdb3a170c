"""Enrolment clients: many small writes through the API, each recorded once acknowledged.

Each :func:`enrol_client` works on the identities it created itself, so its writes to one
identity are in order and the :class:`~tests.reliability._ledger.Ledger` needs no guessing;
the server still sees several clients writing at once.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field

import httpx

from tests.helpers import b64
from tests.reliability._ledger import Ledger


@dataclass
class Mix:
    """Shares of each operation (the rest creates an identity and enrols its first face)."""

    delete_identity: float = 0.08
    delete_face: float = 0.05
    second_face: float = 0.1


@dataclass
class Crops:
    images: list[bytes]
    _next: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int:
        with self._lock:
            index = next(self._next)
        return index % len(self.images)


def enrol_client(
    url: str,
    crops: Crops,
    ledger: Ledger,
    stop: threading.Event,
    mix: Mix,
    seed: int,
    unexpected: list[str],
) -> None:
    """Write until ``stop`` is set or the connection fails (the server was killed)."""
    rng = random.Random(seed)
    mine: list[str] = []
    with httpx.Client(base_url=url, timeout=60) as c:
        while not stop.is_set():
            current: str | None = None
            try:
                roll = rng.random()
                with_faces = [i for i in mine if ledger.faces.get(i)]
                if roll < mix.delete_identity and mine:
                    current = mine.pop(rng.randrange(len(mine)))
                    r = c.delete(f"/identities/{current}")
                    if r.status_code == 204:
                        ledger.identity_deleted(current)
                elif roll < mix.delete_identity + mix.delete_face and with_faces:
                    current = rng.choice(with_faces)
                    face = rng.choice(sorted(ledger.faces[current]))
                    r = c.delete(f"/identities/{current}/faces/{face}")
                    if r.status_code == 204:
                        ledger.face_deleted(current, face)
                elif roll < mix.delete_identity + mix.delete_face + mix.second_face and mine:
                    current = rng.choice(mine)
                    r = _add_face(c, crops, ledger, current)
                else:
                    r = c.post("/identities", json={"name": f"c{seed}-{len(mine)}"})
                    if r.status_code == 201:
                        current = r.json()["id"]
                        ledger.created(current)
                        mine.append(current)
                        r = _add_face(c, crops, ledger, current)
                if r.status_code >= 300:
                    unexpected.append(f"{r.request.method} {r.request.url.path}: {r.status_code}")
            except httpx.TransportError:
                ledger.cut_short(current)
                return


def _add_face(c: httpx.Client, crops: Crops, ledger: Ledger, identity: str) -> httpx.Response:
    crop = crops.take()
    r = c.post(
        f"/identities/{identity}/faces",
        json={"image": [b64(crops.images[crop])], "aligned": True},
    )
    if r.status_code == 201:
        ledger.added(identity, r.json()["faces"][0]["id"], crop)
    return r
