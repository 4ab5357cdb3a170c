"""What a detector reports for one face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# Landmark order used everywhere (insightface's and the ArcFace template's): the eye on the
# image's left, the eye on the image's right, the nose tip, the mouth corner on the image's
# left, the mouth corner on the image's right.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class DetectedFace:
    """One face: box ``(x1, y1, x2, y2)`` and five ``(x, y)`` landmarks in image pixels."""

    bbox: FloatArray  # shape (4,)
    score: float
    landmarks: FloatArray  # shape (5, 2)

    @property
    def width(self) -> float:
        return float(self.bbox[2] - self.bbox[0])

    @property
    def height(self) -> float:
        return float(self.bbox[3] - self.bbox[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)
