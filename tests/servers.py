"""Real server processes for tests: ``facerec serve`` and a Milvus Lite gRPC server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(process: subprocess.Popen[bytes], ready: object, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"{what} exited with {process.returncode}:\n{output}")
        if callable(ready) and ready():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready within {limit:.0f} s")
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(pack: Path, data: Path, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """``python -m service serve`` on a free port, ready; stopped with SIGTERM afterwards."""
    port = free_port()
    environment = {
        **os.environ,
        "FACEREC_PACK": str(pack),
        "FACEREC_DATA_DIR": str(data),
        "FACEREC_DEVICE": "cpu",
        "FACEREC_DET_THRESHOLD": "0.7",
        "FACEREC_PORT": str(port),
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ready() -> bool:
        try:
            return client.get("/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait(process, ready, "facerec serve")
        yield client
    finally:
        client.close()
        _stop(process)


@contextmanager
def milvus_lite_server(data: Path) -> Iterator[str]:
    """A Milvus Lite gRPC server in its own process; yields its ``http://`` URI, which any
    number of processes can share, as they would a Milvus standalone server."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from milvus_lite.cmdline import main; main()",
            "server",
            "--data-dir",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        _wait(process, ready, "milvus-lite server", limit=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
