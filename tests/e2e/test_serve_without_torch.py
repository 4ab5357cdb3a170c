"""The base install serves without PyTorch: a real ``facerec serve`` in which ``import torch``
fails as it does where PyTorch is not installed, driven through every kind of request.

The test process itself has PyTorch (the export extra builds the test pack); the server is
kept from it by a ``sitecustomize`` that puts ``None`` in ``sys.modules["torch"]``, which makes
any ``import torch`` raise ``ModuleNotFoundError``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import b64
from tests.servers import serving

_BLOCK_TORCH = """import sys
sys.modules["torch"] = None  # `import torch` now raises ModuleNotFoundError
"""


@pytest.fixture()
def no_torch(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "no-torch"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCK_TORCH)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_serving_needs_no_pytorch(
    test_pack: Path, tmp_path: Path, insightface_images: Path, no_torch: dict[str, str]
) -> None:
    t1 = b64((insightface_images / "t1.jpg").read_bytes())
    with serving(test_pack, tmp_path / "data", no_torch) as served:
        http = served.http
        info = http.get("/info").json()
        assert info["runtime"] == "onnxruntime"
        faces = http.post("/embed", json={"image": t1}).json()["faces"]
        assert len(faces) == 6
        identity = http.post("/identities", json={"name": "first"}).json()["id"]
        added = http.post(
            f"/identities/{identity}/faces", json={"image": [t1], "box": faces[0]["box"]}
        )
        assert added.status_code == 201, added.text
        found = http.post("/identify", json={"image": t1}).json()["faces"]
        assert found[0]["match"]["identity_id"] == identity
        verdict = http.post("/verify", json={"image": t1, "identity_id": identity, "face": "best"})
        assert verdict.json()["match"] is True
        assert http.get("/metrics").status_code == 200
        assert http.delete(f"/identities/{identity}").status_code == 204
    # the blocker really blocks: the same sitecustomize makes `import torch` fail
    probe = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env={**os.environ, **no_torch},
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


def test_a_command_that_needs_pytorch_names_the_extra(
    tmp_path: Path, no_torch: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "models", "build-test-pack", str(tmp_path / "pack")],
        env={**os.environ, **no_torch},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "pip install 'facerec[export]'" in done.stderr
    assert "Traceback" not in done.stderr
