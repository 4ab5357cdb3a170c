"""``facerec serve`` on a GPU with the PyTorch runtime and the gallery index on the GPU.

The detector stays on the CPU (FACEREC_DETECTOR_DEVICE), so this needs only PyTorch with CUDA,
not onnxruntime-gpu.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import b64
from tests.servers import serving

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("PyTorch sees no CUDA GPU", allow_module_level=True)


def test_serve_with_the_torch_runtime_on_the_gpu(
    test_pack: Path, tmp_path: Path, insightface_images: Path
) -> None:
    t1 = b64((insightface_images / "t1.jpg").read_bytes())
    env = {
        "FACEREC_DEVICE": "cuda",
        "FACEREC_DETECTOR_DEVICE": "cpu",
        "FACEREC_RUNTIME": "torch",
        "FACEREC_INDEX_DEVICE": "cuda",
        "FACEREC_EMBED_WORKERS": "2",
    }
    with serving(test_pack, tmp_path / "data", env) as served:
        http = served.http
        info = http.get("/info").json()
        assert (info["runtime"], info["device"], info["precision"]) == ("torch", "cuda:0", "fp16")
        faces = http.post("/embed", json={"image": t1}).json()["faces"]
        assert len(faces) == 6
        ids = []
        for i, face in enumerate(faces[:3]):
            identity = http.post("/identities", json={"name": f"g{i}"}).json()["id"]
            added = http.post(
                f"/identities/{identity}/faces", json={"image": [t1], "box": face["box"]}
            )
            assert added.status_code == 201, added.text
            ids.append(identity)
        found = http.post("/identify", json={"image": t1}).json()["faces"]
        assert [f["match"]["identity_id"] for f in found[:3]] == ids
