"""An ImageFolder of aligned 112×112 face crops: ``ROOT/<identity>/<image>``, one class each.

Pixels go in as the export stage and the service feed them: RGB, ``(x − 127.5) / 127.5``,
NCHW, so a trained backbone needs no other preprocessing than the one its ONNX metadata names.
The paper's only augmentation, a random horizontal flip, is applied when ``flip`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["CROP_SIZE", "IMAGE_SUFFIXES", "FaceFolder", "to_tensor"]

CROP_SIZE = 112
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
INPUT_MEAN = 127.5
INPUT_STD = 127.5


def to_tensor(rgb: np.ndarray) -> torch.Tensor:  # type: ignore[type-arg]
    """An ``H×W×3`` uint8 RGB crop → a normalised float32 ``3×H×W`` tensor."""
    pixels = torch.from_numpy(np.array(rgb, dtype=np.uint8))  # a writable, contiguous copy
    return (pixels.permute(2, 0, 1).float() - INPUT_MEAN) / INPUT_STD


class FaceFolder(Dataset[tuple[torch.Tensor, int]]):
    """Aligned crops under ``root``, one sub-folder per identity, labelled in sorted order."""

    def __init__(self, root: str | os.PathLike[str], flip: bool = True) -> None:
        self.root = Path(root)
        self.flip = flip
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is not a folder of identity sub-folders")
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.samples: list[tuple[Path, int]] = [
            (path, label)
            for label, name in enumerate(self.classes)
            for path in sorted((self.root / name).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        ]
        if len(self.classes) < 2 or not self.samples:
            raise ValueError(
                f"{self.root}: need at least 2 identity sub-folders with images "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}), found {len(self.classes)} folders and "
                f"{len(self.samples)} images"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            if image.size != (CROP_SIZE, CROP_SIZE):
                raise ValueError(
                    f"{path} is {image.size[0]}×{image.size[1]}; training takes aligned "
                    f"{CROP_SIZE}×{CROP_SIZE} crops (align with the ArcFace 5-point template first)"
                )
            rgb = np.asarray(image.convert("RGB"))
        if self.flip and bool(torch.rand(()) < 0.5):
            rgb = rgb[:, ::-1]
        return to_tensor(rgb), label
