"""The PyTorch runtime serves the network the pack's ONNX file holds (checked on CPU here;
its CUDA path is tested in tests/gpu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.models.loading import build_embedder
from service.models.packs import load_pack

pytest.importorskip("torch")


def test_torch_runtime_matches_onnxruntime_on_the_pack(test_pack: Path) -> None:
    pack = load_pack(test_pack)
    crops = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    ort = build_embedder(pack, "cpu", runtime="onnxruntime").embed(crops)
    torch_embedder = build_embedder(pack, "cpu", runtime="torch", max_batch=2)
    assert torch_embedder.runtime.name == "torch"
    assert torch_embedder.runtime.precision == "fp32"  # fp16 is for GPUs
    got = torch_embedder.embed(crops)  # 5 crops through max_batch 2: chunked
    assert got.shape == (5, 512)
    assert np.sum(got * ort, axis=1).min() > 0.9999


def test_torch_runtime_refuses_a_trained_pack_without_its_checkpoint(
    test_pack: Path, tmp_path: Path
) -> None:
    from service.inference.torch_runtime import model_for

    with pytest.raises(ValueError, match=r"backbone\.pth"):
        model_for("r18", 512, checkpoint=None, seed=None)
    wrong = tmp_path / "backbone.pth"
    wrong.write_bytes(b"not this one")
    with pytest.raises(ValueError, match="not the checkpoint"):
        model_for("r18", 512, checkpoint=str(wrong), expected_sha256="ab" * 32)


@pytest.mark.parametrize("arch", ["r18", "mbf"])
def test_folding_batchnorm_changes_no_output(arch: str) -> None:
    import torch

    from model_export.onnx_export import random_backbone
    from service.inference.torch_runtime import fold_batchnorm

    x = torch.rand(3, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        want = random_backbone(arch, 0)(x)
        folded = fold_batchnorm(random_backbone(arch, 0))
        got = folded(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    if arch == "r18":
        norms = [
            m for m in folded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        assert len(norms) == 8  # one per unit (before its first conv): the rest are folded
