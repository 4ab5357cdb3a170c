"""A ``facerec serve`` process the reliability tests can kill, stop and start again.

Unlike :func:`tests.servers.serving` (a context manager for one life), a :class:`Server`
keeps its data directory across lives: ``start()``, then ``kill()`` (SIGKILL: a crash) or
``terminate()`` (SIGTERM: a graceful stop, its exit status returned), then ``start()`` again on
the same data. Its output goes to a log file, never to a pipe nobody reads (a full pipe would
stall the server after a few hundred access-log lines).
"""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import cv2
import httpx
import numpy as np

from tests.servers import _wait, free_port

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


class Server:
    def __init__(self, pack: Path, data: Path, env: dict[str, str] | None = None) -> None:
        self.pack = pack
        self.data = data
        self.env = env or {}
        self.log = data.parent / f"{data.name}-server.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.lives = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def start(self, wait: bool = True) -> Server:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.port = free_port()
        environment = {
            **os.environ,
            "FACEREC_PACK": str(self.pack),
            "FACEREC_DATA_DIR": str(self.data),
            "FACEREC_DEVICE": "cpu",
            "FACEREC_DET_THRESHOLD": "0.7",
            "FACEREC_PORT": str(self.port),
            "FACEREC_THREADS": "1",
            **self.env,
        }
        self.lives += 1
        with self.log.open("ab") as log:
            log.write(f"\n===== life {self.lives} =====\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve"],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, limit: float = 120) -> None:
        assert self.process is not None

        def ready() -> bool:
            try:
                with self.client(timeout=5) as c:
                    return c.get("/health/ready").status_code == 200
            except httpx.TransportError:
                return False

        try:
            _wait(self.process, ready, "facerec serve", limit)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-4000:]}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-request, mid-transaction."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> tuple[int, float]:
        """SIGTERM; returns the exit status and the seconds the process took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
