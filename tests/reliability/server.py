"""``facerec serve`` as a real process for the security tests: its output goes to a file (a
pipe would fill up and block the server under the access log), its pid is at hand for
memory figures, its port for raw-socket clients."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import _stop, _wait, free_port


@dataclass
class Served:
    http: httpx.Client
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


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


@contextmanager
def serving(pack: Path, data: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """A ready server on a free port (``-v``: debug logging), stopped with SIGTERM after."""
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
    data.mkdir(parents=True, exist_ok=True)
    log = data / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "-v", "serve"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ready() -> bool:
        try:
            return http.get("/health/ready").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait(process, ready, "facerec serve")
        yield Served(http, process, port, log)
    finally:
        http.close()
        _stop(process)
