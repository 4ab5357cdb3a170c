"""What the crash, concurrency, overload and shutdown tests share: a restartable server
(:class:`tests.servers.Server`), test images, and direct reads of the gallery database."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import cv2
import numpy as np

from tests import servers

__all__ = ["Server", "b64", "noise_crops", "one_face_jpeg", "sqlite_count", "sqlite_rows"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def noise_crops(n: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct 112×112 PNG "aligned crops" of random noise. The untrained recognizer
    gives them nearly orthogonal embeddings (pairwise cosine below 0.3), so a search with
    one of them finds its own identity first: a cheap, exact probe of the index."""
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        ok, png = cv2.imencode(".png", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
        assert ok
        crops.append(png.tobytes())
    return crops


def one_face_jpeg(insightface_images: Path) -> bytes:
    """A JPEG holding one face: a face of t1.jpg with a margin around it, no other face."""
    image = cv2.imread(str(insightface_images / "t1.jpg"))
    assert image is not None
    ok, jpg = cv2.imencode(".jpg", image[0:336, 804:1116])
    assert ok
    return jpg.tobytes()


def sqlite_rows(data: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of ``query`` on the gallery database, read directly (not through the service)."""
    db = sqlite3.connect(f"file:{(data / 'gallery.sqlite3').resolve()}?mode=ro", uri=True)
    try:
        return list(db.execute(query).fetchall())
    finally:
        db.close()


def sqlite_count(data: Path, query: str) -> int:
    """The single integer ``query`` (a ``SELECT COUNT(*) ...``) gives on the gallery database."""
    (value,) = sqlite_rows(data, query)[0]
    assert isinstance(value, int)
    return value


class Server(servers.Server):
    """:class:`tests.servers.Server` with one ONNX Runtime thread per session: the servers
    and clients of these tests share two cores."""

    def __init__(self, pack: Path, data: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(pack, data, {"FACEREC_THREADS": "1", **(env or {})})
