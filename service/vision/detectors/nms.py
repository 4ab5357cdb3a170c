"""Greedy non-maximum suppression over axis-aligned boxes."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt


def nms(
    boxes: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    iou_threshold: float,
    mode: Literal["union", "min"] = "union",
) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept, highest score first.

    ``boxes`` is ``(N, 4)`` as ``x1, y1, x2, y2``; a box is dropped when its overlap with a
    kept, higher-scoring box exceeds ``iou_threshold``. Overlap is intersection over union,
    or over the smaller area with ``mode="min"`` (MTCNN's last stage). Areas use the ``+1``
    pixel convention of the reference implementations (insightface's SCRFD, MTCNN).
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if mode == "min":
            overlap = inter / np.minimum(areas[i], areas[rest])
        else:
            overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)
