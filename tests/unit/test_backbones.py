"""The backbones' parameter names and shapes are arcface_torch's, so its checkpoints load.

The digests below were computed from insightface's own ``recognition/arcface_torch/backbones``
(``get_model(name, num_features=512).state_dict()``): a sha256 over the sorted
``(key, shape)`` list. Our classes gave identical lists and, with the reference's weights
loaded, identical outputs (max abs difference 0.0 for r18 and mbf).
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from model_export.backbones import BACKBONES, build_backbone

REFERENCE_LAYOUT = {
    # arch: (state-dict entries, digest of sorted (key, shape), trainable+BN-affine parameters)
    "r18": (187, "64c38c6a525da7fd", 24_025_600),
    "r34": (331, "1c2b7eb0dd235ace", 34_139_328),
    "r50": (475, "128b2972cc7b3f14", 43_590_848),
    "r100": (925, "5a3675233f7c53cd", 65_156_160),
    "r200": (1807, "24374fba237ab723", 118_833_920),
    "mbf": (333, "c3ea6be86d91d98c", 2_059_520),
    "mbf_large": (606, "9fa343597ed770a1", 6_314_880),
}


def test_registry_names_every_arcface_torch_backbone() -> None:
    assert set(BACKBONES) == set(REFERENCE_LAYOUT)


@pytest.mark.parametrize("arch", sorted(REFERENCE_LAYOUT))
def test_state_dict_layout_matches_arcface_torch(arch: str) -> None:
    entries, digest, params = REFERENCE_LAYOUT[arch]
    state = build_backbone(arch).state_dict()
    layout = sorted((k, tuple(v.shape)) for k, v in state.items())
    assert len(layout) == entries
    assert hashlib.sha256(repr(layout).encode()).hexdigest()[:16] == digest
    counted = sum(
        v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k
    )
    assert counted == params


@pytest.mark.parametrize("arch", ["r18", "mbf"])
def test_forward_gives_one_embedding_per_face(arch: str) -> None:
    model = build_backbone(arch, embedding_size=128).eval()
    with torch.inference_mode():
        out = model(torch.zeros(3, 3, 112, 112))
    assert out.shape == (3, 128)
    assert torch.isfinite(out).all()


def test_unknown_arch_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="r100"):
        build_backbone("r101")
