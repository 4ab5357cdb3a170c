"""Five-point alignment onto the ArcFace 112×112 template.

A least-squares similarity transform (rotation, uniform scale, translation; Umeyama 1991)
maps the detected landmarks onto the template, and ``cv2.warpAffine`` (bilinear, zero
border) cuts the crop. This is what insightface's ``face_align.norm_crop`` does, without its
scikit-image dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import InvalidImage
from service.vision.faces import DetectedFace

__all__ = ["ARCFACE_TEMPLATE", "align_faces", "as_aligned_crop", "similarity_transform"]

# the five landmarks of a 112×112 ArcFace crop (eyes, nose tip, mouth corners)
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

Crops = npt.NDArray[np.uint8]  # (N, size, size, 3)


def template_for(size: int) -> npt.NDArray[np.float64]:
    """The template for a ``size``×``size`` crop (a multiple of 112, or of 128 as insightface)."""
    scaled: npt.NDArray[np.float64]
    if size % 112 == 0:
        scaled = ARCFACE_TEMPLATE * (size / 112.0)
        return scaled
    if size % 128 == 0:
        ratio = size / 128.0
        scaled = ARCFACE_TEMPLATE * ratio + np.array([8.0 * ratio, 0.0])
        return scaled
    raise ValueError(f"crop size must be a multiple of 112 or 128, got {size}")


def similarity_transform(src: npt.ArrayLike, dst: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 2×3 similarity matrix minimising the squared distance from ``src`` to ``dst``."""
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    n = s.shape[0]
    mean_s, mean_d = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - mean_s, d - mean_d
    var_s = float(np.sum(sc * sc)) / n
    cov = dc.T @ sc / n
    u, sigma, vt = np.linalg.svd(cov)
    reflect = np.eye(2)
    if np.linalg.det(cov) < 0:
        reflect[1, 1] = -1.0
    rotation = u @ reflect @ vt
    scale = float(np.sum(sigma * np.diag(reflect))) / var_s if var_s > 0 else 1.0
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_d - scale * rotation @ mean_s
    return matrix


def align_faces(
    image: npt.NDArray[np.uint8], faces: Sequence[DetectedFace], size: int = 112
) -> Crops:
    """One ``size``×``size`` crop per face, in the image's channel order."""
    template = template_for(size)
    crops = np.empty((len(faces), size, size, 3), dtype=np.uint8)
    for i, face in enumerate(faces):
        matrix = similarity_transform(face.landmarks, template)
        cv2.warpAffine(
            image,
            matrix,
            (size, size),
            dst=crops[i],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    return crops


def as_aligned_crop(image: npt.NDArray[np.uint8], size: int = 112) -> Crops:
    """The "already aligned" mode: a client's own ``size``×``size`` crop, as a batch of one."""
    if image.shape[:2] != (size, size):
        h, w = image.shape[:2]
        raise InvalidImage(f"an aligned face must be {size}×{size} pixels, got {w}×{h}")
    return np.ascontiguousarray(image)[None]
