"""``facerec serve`` for the security tests (:class:`tests.servers.Server` at debug level):
its pid at hand for memory figures, its port for raw-socket clients, its output for the
never-logged checks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import Server


@dataclass
class Served:
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
    with Server(pack, data, env, verbose=True) as server:
        server.start()
        with server.client(timeout=60) as http:
            yield Served(http, server)
