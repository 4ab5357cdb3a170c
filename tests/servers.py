"""Real server processes for tests: ``facerec serve`` (:class:`Server`, or :func:`serving`
for one life) and a Milvus Lite gRPC server; the memory figures of a process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(process: subprocess.Popen[bytes], ready: object, what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}")
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


class Server:
    """``python -m service serve`` as a real process that can be started, killed (SIGKILL: a
    crash), terminated (SIGTERM: a graceful stop) and started again on the same data.

    Its output goes to a log file next to the data directory, never to a pipe nobody reads (a
    full pipe would stall the server after a few hundred access-log lines). ``verbose``:
    debug logging; ``threads``: ONNX Runtime threads per session (``FACEREC_THREADS``; the
    reliability suite's servers and clients share two cores, so it gives them one)."""

    def __init__(
        self,
        pack: Path,
        data: Path,
        env: dict[str, str] | None = None,
        *,
        verbose: bool = False,
        threads: int | None = None,
    ) -> None:
        self.pack = pack
        self.data = data
        self.env = {**({} if threads is None else {"FACEREC_THREADS": str(threads)}), **(env or {})}
        self.verbose = verbose
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
            **self.env,
        }
        self.lives += 1
        command = [sys.executable, "-m", "service", *(["-v"] if self.verbose else []), "serve"]
        with self.log.open("ab") as log:
            log.write(f"\n===== life {self.lives} =====\n".encode())
            self.process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT
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
            _stop(self.process)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Served:
    """A running server and a client of it."""

    http: httpx.Client
    server: Server

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.server.process is not None
        return self.server.process

    @property
    def port(self) -> int:
        return self.server.port

    def output(self) -> str:
        return self.server.output()


@contextmanager
def serving(
    pack: Path, data: Path, env: dict[str, str] | None = None, *, verbose: bool = False
) -> Iterator[Served]:
    """A ready server on a free port for one life; stopped with SIGTERM afterwards."""
    with Server(pack, data, env, verbose=verbose) as server:
        server.start()
        with server.client(timeout=60) as http:
            yield Served(http, server)


@contextmanager
def milvus_lite_server(data: Path) -> Iterator[str]:
    """A Milvus Lite gRPC server in its own process; yields its ``http://`` URI, which any
    number of processes can share, as they would a Milvus standalone server."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}-milvus.log"
    with log.open("ab") as out:
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
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        try:
            _wait(process, ready, "milvus-lite server", limit=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-4000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def resident_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS)."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_resident_bytes(pid: int) -> int:
    """The most it has held resident (VmHWM) since start or :func:`reset_peak`."""
    return _status_kib(pid, "VmHWM") * 1024


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
