"""Registry of the ArcFace backbones that ``arcface_torch`` trains, by its names."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from model_export.backbones.iresnet import IRESNET_LAYERS, IResNet, iresnet
from model_export.backbones.mobilefacenet import MobileFaceNet, mobilefacenet

__all__ = ["BACKBONES", "IResNet", "MobileFaceNet", "build_backbone"]

BackboneBuilder = Callable[[int], nn.Module]

BACKBONES: dict[str, BackboneBuilder] = {
    **{name: partial(iresnet, name) for name in IRESNET_LAYERS},
    "mbf": partial(mobilefacenet, "mbf"),
    "mbf_large": partial(mobilefacenet, "mbf_large"),
}


def build_backbone(arch: str, embedding_size: int = 512) -> nn.Module:
    """A freshly initialised backbone by its ``arcface_torch`` name (``r100``, ``mbf``, …)."""
    try:
        builder = BACKBONES[arch]
    except KeyError:
        raise ValueError(f"unknown backbone {arch!r}; known: {', '.join(BACKBONES)}") from None
    return builder(embedding_size)
