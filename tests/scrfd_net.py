"""A random-initialised network with SCRFD's ONNX interface, for tests (no weights needed).

Like insightface's ``det_10g.onnx``: input ``input.1`` ``(1, 3, H, W)`` with dynamic H and W,
nine outputs — scores, box distances and landmark offsets for strides 8, 16 and 32, two
anchors per location, shaped ``(K, 1)``, ``(K, 4)``, ``(K, 10)``. With ``batched=True`` the
batch axis is dynamic and kept in the outputs, ``(N, K, C)``, as in SCRFD's batched exports.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

ANCHORS = 2


class TinySCRFD(nn.Module):
    def __init__(self, batched: bool) -> None:
        super().__init__()
        self.batched = batched
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, 2, 1),
            nn.ReLU(),
        )  # stride 8
        self.down = nn.ModuleList([nn.Conv2d(16, 16, 3, 2, 1), nn.Conv2d(16, 16, 3, 2, 1)])
        self.score = nn.ModuleList([nn.Conv2d(16, ANCHORS, 3, 1, 1) for _ in range(3)])
        self.box = nn.ModuleList([nn.Conv2d(16, ANCHORS * 4, 3, 1, 1) for _ in range(3)])
        self.kps = nn.ModuleList([nn.Conv2d(16, ANCHORS * 10, 3, 1, 1) for _ in range(3)])

    def _flat(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        n = x.shape[0]
        out = x.permute(0, 2, 3, 1).reshape(n, -1, channels)
        return out if self.batched else out.reshape(-1, channels)

    @staticmethod
    def _standard_score(z: torch.Tensor) -> torch.Tensor:
        """Scores whose top ~1 % pass 0.5, whatever the random weights' scale."""
        mean = z.mean(dim=(1, 2, 3), keepdim=True)
        std = z.std(dim=(1, 2, 3), keepdim=True) + 1e-6
        return torch.sigmoid((z - mean) / std - 2.3)

    @staticmethod
    def _distances(z: torch.Tensor) -> torch.Tensor:
        """Box side distances of 0.5 to 3.5 strides, varied whatever the weights' scale."""
        mean = z.mean(dim=(1, 2, 3), keepdim=True)
        std = z.std(dim=(1, 2, 3), keepdim=True) + 1e-6
        return 0.5 + 3.0 * torch.sigmoid((z - mean) / std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = [self.stem(x)]
        for down in self.down:
            feats.append(torch.relu(down(feats[-1])))
        scores = [
            self._flat(self._standard_score(h(f)), 1)
            for h, f in zip(self.score, feats, strict=True)
        ]
        boxes = [self._flat(self._distances(h(f)), 4) for h, f in zip(self.box, feats, strict=True)]
        kps = [self._flat(h(f), 10) for h, f in zip(self.kps, feats, strict=True)]
        return (*scores, *boxes, *kps)


def export_scrfd_like(out: Path, *, batched: bool = False, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = TinySCRFD(batched).eval()
    names = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in (8, 16, 32)]
    axes = {"input.1": {2: "height", 3: "width"}}
    if batched:
        axes["input.1"][0] = "batch"
        axes.update({n: {0: "batch", 1: "candidates"} for n in names})
    else:
        axes.update({n: {0: "candidates"} for n in names})
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, 640, 640),),
        str(out),
        input_names=["input.1"],
        output_names=names,
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    return out
