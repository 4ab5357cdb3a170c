"""A random-initialised network with SCRFD's ONNX interface, for tests (no weights needed).

Like insightface's ``det_10g.onnx``: input ``input.1`` ``(1, 3, H, W)`` with free H and W,
nine outputs in the order insightface reads them — scores for strides 8, 16, 32, then box
distances for 8, 16, 32, then landmark offsets for 8, 16, 32 — two anchors per location,
shaped ``(K, 1)``, ``(K, 4)``, ``(K, 10)`` with ``K = (H / stride) · (W / stride) · 2``.

``batched=True`` keeps the batch axis in the outputs, ``(N, K, C)`` (insightface's
``batched`` flag: outputs of rank 3), with a free batch axis, or a fixed one of ``batch``.
``input_size=(W, H)`` fixes the spatial input size, as some exports do.

The heads are made to look like a trained detector's to the decoder: on every level the
``TOP`` highest-scoring anchors of each image score at least 0.5 (so strides 8, 16 and 32 all
produce candidates; input sides of 128 pixels or more), and box distances are positive (0.5
to 3.5 strides), so boxes are well formed and NMS has overlaps to remove.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

ANCHORS = 2
STRIDES = (8, 16, 32)
TOP = 24  # anchors per image and level that score at least 0.5 (ties aside)


class TinySCRFD(nn.Module):
    """Three feature levels (strides 8, 16, 32), one conv head per output and level."""

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
        self.score = nn.ModuleList([nn.Conv2d(16, ANCHORS, 3, 1, 1) for _ in STRIDES])
        self.box = nn.ModuleList([nn.Conv2d(16, ANCHORS * 4, 3, 1, 1) for _ in STRIDES])
        self.kps = nn.ModuleList([nn.Conv2d(16, ANCHORS * 10, 3, 1, 1) for _ in STRIDES])

    def _flat(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        """``(N, A·C, h, w)`` → ``(N, h·w·A, C)``: location-major, then anchor (SCRFD's order)."""
        n = x.shape[0]
        out = x.permute(0, 2, 3, 1).reshape(n, -1, channels)
        return out if self.batched else out.reshape(-1, channels)

    @staticmethod
    def _standardised(z: torch.Tensor) -> torch.Tensor:
        mean = z.mean(dim=(1, 2, 3), keepdim=True)
        std = z.std(dim=(1, 2, 3), keepdim=True) + 1e-6
        return (z - mean) / std

    @staticmethod
    def _scores(z: torch.Tensor) -> torch.Tensor:
        """Per image, the ``TOP`` highest logits of the level score 0.5 or more (an ONNX
        TopK): every level contributes candidates, whatever the random weights."""
        z = z / (z.std(dim=(1, 2, 3), keepdim=True) + 1e-6)
        kth = z.flatten(1).topk(TOP, dim=1).values[:, -1:]
        return torch.sigmoid(4.0 * (z - kth[:, :, None, None]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = [self.stem(x)]
        for down in self.down:
            feats.append(torch.relu(down(feats[-1])))
        scores = [self._flat(self._scores(h(f)), 1) for h, f in zip(self.score, feats, strict=True)]
        boxes = [
            self._flat(0.5 + 3.0 * torch.sigmoid(self._standardised(h(f))), 4)
            for h, f in zip(self.box, feats, strict=True)
        ]
        kps = [self._flat(h(f), 10) for h, f in zip(self.kps, feats, strict=True)]
        return (*scores, *boxes, *kps)


def export_scrfd_like(
    out: Path,
    *,
    batched: bool = False,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
    batch: int | None = None,
) -> Path:
    """Export a seeded :class:`TinySCRFD` to ``out`` (ONNX, opset 17) and return ``out``."""
    torch.manual_seed(seed)
    net = TinySCRFD(batched).eval()
    names = [f"{kind}_{s}" for kind in ("score", "bbox", "kps") for s in STRIDES]
    width, height = input_size or (640, 640)
    input_axes: dict[int, str] = {} if input_size else {2: "height", 3: "width"}
    output_axes: dict[int, str] = {} if input_size else {(1 if batched else 0): "candidates"}
    if batched and batch is None:
        input_axes[0] = "batch"
        output_axes[0] = "batch"
    axes = {"input.1": input_axes, **{n: dict(output_axes) for n in names}}
    torch.onnx.export(
        net,
        (torch.zeros(batch or 1, 3, height, width),),
        str(out),
        input_names=["input.1"],
        output_names=names,
        dynamic_axes={k: v for k, v in axes.items() if v},
        opset_version=17,
        dynamo=False,
    )
    return out
