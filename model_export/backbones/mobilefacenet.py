"""MobileFaceNet as trained by insightface ``arcface_torch`` (``mbf``, ``mbf_large``).

Module names follow the ``arcface_torch`` checkpoint's key names so that its
``backbone.pth`` loads strictly.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MobileFaceNet", "mobilefacenet"]

_Pair = tuple[int, int]


class ConvBlock(nn.Module):
    """Conv → BN → PReLU."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: _Pair = (1, 1),
        stride: _Pair = (1, 1),
        padding: _Pair = (0, 0),
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(
                in_c, out_c, kernel, stride=stride, padding=padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_c),
            nn.PReLU(out_c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class LinearBlock(nn.Module):
    """Conv → BN, no activation (the linear bottleneck)."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: _Pair = (1, 1),
        stride: _Pair = (1, 1),
        padding: _Pair = (0, 0),
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class DepthWise(nn.Module):
    """Inverted residual: 1×1 expand → depthwise k×k → 1×1 linear projection."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        residual: bool = False,
        kernel: _Pair = (3, 3),
        stride: _Pair = (2, 2),
        padding: _Pair = (1, 1),
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, groups),
            ConvBlock(groups, groups, kernel, stride, padding, groups=groups),
            LinearBlock(groups, out_c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return x + out if self.residual else out


class Residual(nn.Module):
    def __init__(self, c: int, num_block: int, groups: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(DepthWise(c, c, True, (3, 3), (1, 1), (1, 1), groups) for _ in range(num_block))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class GDC(nn.Module):
    """Global depthwise convolution head: 7×7 depthwise → flatten → linear → BN."""

    def __init__(self, embedding_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, kernel=(7, 7), groups=512),
            nn.Flatten(),
            nn.Linear(512, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class MobileFaceNet(nn.Module):
    def __init__(
        self,
        embedding_size: int = 512,
        blocks: tuple[int, int, int, int] = (1, 4, 6, 2),
        scale: int = 2,
    ) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        c64, c128 = 64 * scale, 128 * scale
        self.layers = nn.ModuleList()
        self.layers.append(ConvBlock(3, c64, (3, 3), (2, 2), (1, 1)))
        if blocks[0] == 1:
            self.layers.append(ConvBlock(c64, c64, (3, 3), (1, 1), (1, 1), groups=64))
        else:
            self.layers.append(Residual(c64, blocks[0], groups=128))
        self.layers.extend(
            [
                DepthWise(c64, c64, False, (3, 3), (2, 2), (1, 1), groups=128),
                Residual(c64, blocks[1], groups=128),
                DepthWise(c64, c128, False, (3, 3), (2, 2), (1, 1), groups=256),
                Residual(c128, blocks[2], groups=256),
                DepthWise(c128, c128, False, (3, 3), (2, 2), (1, 1), groups=512),
                Residual(c128, blocks[3], groups=256),
            ]
        )
        self.conv_sep = ConvBlock(c128, 512)
        self.features = GDC(embedding_size)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        out: torch.Tensor = self.features(self.conv_sep(x))
        return out


def mobilefacenet(arch: str = "mbf", embedding_size: int = 512) -> MobileFaceNet:
    """``mbf`` (scale 2, blocks 1-4-6-2) or ``mbf_large`` (scale 4, blocks 2-8-12-4)."""
    if arch == "mbf":
        return MobileFaceNet(embedding_size, (1, 4, 6, 2), scale=2)
    if arch == "mbf_large":
        return MobileFaceNet(embedding_size, (2, 8, 12, 4), scale=4)
    raise ValueError(f"unknown MobileFaceNet {arch!r}; known: mbf, mbf_large")
