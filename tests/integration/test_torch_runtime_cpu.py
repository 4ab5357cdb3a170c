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


def test_torch_id_map_searches_and_removes_like_faiss() -> None:
    """The GPU gallery index's logic, run on PyTorch's CPU device here (tests/gpu: on CUDA)."""
    from service.gallery.index import TemplateIndex
    from service.gallery.torch_search import TorchIDMap
    from service.inference.embedder import l2_normalise

    rng = np.random.default_rng(0)
    vectors = l2_normalise(rng.standard_normal((300, 16)).astype(np.float32))
    ids = rng.permutation(10_000)[:300].astype(np.int64)
    torch_map = TorchIDMap(16, device="cpu", precision="fp32")
    torch_map.add_with_ids(vectors[:100], ids[:100])
    torch_map.add_with_ids(vectors[100:], ids[100:])
    torch_map.remove_ids_array(ids[::3])
    faiss_index = TemplateIndex(16)
    faiss_index.upsert(ids, vectors)
    faiss_index.remove(ids[::3])
    probes = vectors[1::3][:20]
    scores, found = torch_map.search(probes, 4)
    want_scores, want = faiss_index.search(probes, 4)
    assert torch_map.ntotal == 200
    np.testing.assert_array_equal(found, want)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert not np.isin(found, ids[::3]).any()
