"""The detector interface: RGB images in, faces with five landmarks out, batched over images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from service.vision.faces import DetectedFace

RGBImage = npt.NDArray[np.uint8]  # (H, W, 3), RGB, uint8


@dataclass(frozen=True)
class DetectorConfig:
    """Settings every detector honours.

    ``threshold``: minimum face score. ``min_face_size``: faces whose shorter box side is
    below this many pixels are dropped. ``max_faces``: keep at most this many, highest
    score first (0: no limit). ``input_size``: the detector's network input (width, height)
    where it has one (SCRFD); MTCNN works on an image pyramid and ignores it.
    """

    threshold: float = 0.5
    min_face_size: int = 20
    max_faces: int = 0
    input_size: tuple[int, int] = (640, 640)
    nms_threshold: float = 0.4


class Detector(Protocol):
    """Any face detector of the service."""

    name: str
    config: DetectorConfig

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces per image, each list sorted by descending score."""
        ...
