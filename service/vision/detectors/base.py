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

    ``threshold``: minimum face score; ``None`` takes the detector's own default (a model
    pack's manifest may set one; else MTCNN 0.7, SCRFD 0.5, YuNet 0.6, see
    :data:`DEFAULT_THRESHOLDS`). ``min_face_size``: faces whose shorter box side is below
    this many pixels are dropped. ``max_faces``: keep at most this many, highest score first
    (0: no limit). ``input_size``: the detector's network input (width, height) where it has
    one (SCRFD, YuNet); MTCNN works on an image pyramid and ignores it. ``nms_threshold``:
    ``None`` takes the detector's reference value (SCRFD 0.4, YuNet 0.3; MTCNN keeps its
    own per-stage values).
    """

    threshold: float | None = None
    min_face_size: int = 20
    max_faces: int = 0
    input_size: tuple[int, int] = (640, 640)
    nms_threshold: float | None = None


# Each detector's score threshold where neither the settings nor the pack's manifest set
# one: MTCNN's reference (its last stage, ipazc/mtcnn and the paper's code: 0.7), SCRFD's
# (insightface's det_thresh 0.5) and YuNet's (measured here, see yunet.py).
DEFAULT_THRESHOLDS = {"mtcnn": 0.7, "scrfd": 0.5, "yunet": 0.6}


def threshold_or_default(config: DetectorConfig, kind: str) -> float:
    """``config.threshold``, or the default of the detector ``kind`` where it is unset."""
    return DEFAULT_THRESHOLDS[kind] if config.threshold is None else float(config.threshold)


class Detector(Protocol):
    """Any face detector of the service."""

    name: str
    config: DetectorConfig

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces per image, each list sorted by descending score."""
        ...
