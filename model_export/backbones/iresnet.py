"""Improved ResNets (IR-SE without SE) as trained by insightface ``arcface_torch``.

The module and parameter names here are the checkpoint's key names: a ``backbone.pth``
saved by ``arcface_torch`` loads into these classes with ``strict=True``. The network is
the one of the ArcFace paper (section 3.2): BN-Conv-BN-PReLU-Conv-BN residual units,
stride-2 first units, and the "E" output block (BN → dropout → FC → BN) giving the
embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["IRESNET_LAYERS", "IBasicBlock", "IResNet", "iresnet"]

# blocks per stage for each depth, as arcface_torch defines them
IRESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "r18": (2, 2, 2, 2),
    "r34": (3, 4, 6, 3),
    "r50": (3, 4, 14, 3),
    "r100": (3, 13, 30, 3),
    "r200": (6, 26, 60, 6),
}


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN → 3×3 conv → BN → PReLU → 3×3 conv (strided) → BN, plus the shortcut."""

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity: torch.Tensor = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """IResNet backbone: a 3×112×112 face crop in, an ``embedding_size`` feature out."""

    fc_scale = 7 * 7

    def __init__(
        self,
        layers: Sequence[int],
        embedding_size: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"an IResNet has 4 stages, got {len(layers)}")
        self.embedding_size = embedding_size
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * self.fc_scale, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        # every stage halves the resolution in its first unit, which also projects the shortcut
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(planes, eps=1e-05),
        )
        units: list[nn.Module] = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        units.extend(IBasicBlock(planes, planes) for _ in range(1, blocks))
        return nn.Sequential(*units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        x = self.dropout(x)
        out: torch.Tensor = self.features(self.fc(x))
        return out


def iresnet(arch: str, embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    """Build ``r18`` … ``r200`` by name."""
    try:
        layers = IRESNET_LAYERS[arch]
    except KeyError:
        raise ValueError(f"unknown IResNet {arch!r}; known: {', '.join(IRESNET_LAYERS)}") from None
    return IResNet(layers, embedding_size=embedding_size, dropout=dropout)
