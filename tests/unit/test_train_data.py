"""The training ImageFolder: labels by sorted folder, RGB (x − 127.5) / 127.5, crop size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model_export.training.data import FaceFolder


def _save(path: Path, rgb: tuple[int, int, int], size: int = 112) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), rgb, dtype=np.uint8)).save(path)


def test_labels_follow_sorted_folders_and_pixels_are_rgb_normalised(tmp_path: Path) -> None:
    _save(tmp_path / "bob" / "a.png", (255, 0, 0))
    _save(tmp_path / "alice" / "a.jpg", (0, 0, 255))
    (tmp_path / "alice" / "notes.txt").write_text("not an image")
    folder = FaceFolder(tmp_path, flip=False)
    assert folder.classes == ["alice", "bob"]
    assert len(folder) == 2 and folder.num_classes == 2
    red, label = folder[1]
    assert label == 1 and red.shape == (3, 112, 112) and red.dtype == torch.float32
    # red in channel 0 (RGB, not BGR), 255 → 1 and 0 → −1
    torch.testing.assert_close(red[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))


def test_flip_mirrors_the_crop(tmp_path: Path) -> None:
    pixels = np.zeros((112, 112, 3), dtype=np.uint8)
    pixels[:, :10] = 255
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(pixels).save(tmp_path / name / "x.png")
    torch.manual_seed(0)
    flipped = {float(FaceFolder(tmp_path, flip=True)[0][0][0, 0, 0]) for _ in range(20)}
    assert flipped == {1.0, -1.0}
    assert float(FaceFolder(tmp_path, flip=False)[0][0][0, 0, 0]) == 1.0


def test_wrong_size_and_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 identity"):
        FaceFolder(tmp_path)
    _save(tmp_path / "a" / "x.png", (1, 2, 3), size=100)
    _save(tmp_path / "b" / "x.png", (1, 2, 3))
    with pytest.raises(ValueError, match="aligned 112×112"):
        FaceFolder(tmp_path)[0]
