"""YuNet's NMS against OpenCV's own ``cv2.dnn.NMSBoxes`` (what ``FaceDetectorYN`` calls)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.vision.detectors.yunet import opencv_nms


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("top_k", [0, 5])
def test_equals_cv2_dnn_nmsboxes(seed: int, top_k: int) -> None:
    """Float boxes (some with negative corners, where ``int()`` truncates toward zero), tied
    scores, scores at the threshold, a top-k."""
    rng = np.random.default_rng(seed)
    n = 60
    xy = rng.uniform(-20, 150, (n, 2))
    wh = rng.uniform(0.5, 60, (n, 2))
    boxes = np.concatenate([xy, wh], axis=1).astype(np.float32)
    scores = rng.choice(np.float32([0.3, 0.5, 0.6, 0.7, 0.8, 0.9]), n).astype(np.float32)
    rects = [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes.tolist()]
    expected = cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.5, 0.3, 1.0, top_k)
    got = opencv_nms(boxes, scores, 0.5, 0.3, top_k)
    assert got.tolist() == np.asarray(expected, int).reshape(-1).tolist()
    assert len(got) > 1


def test_the_iou_threshold_decides() -> None:
    """Not a tautology: a looser IoU keeps boxes OpenCV suppresses at 0.3."""
    boxes = np.float32([[0, 0, 10, 10], [3, 0, 10, 10]])  # IoU 0.7/1.3 ≈ 0.54
    scores = np.float32([0.9, 0.8])
    assert opencv_nms(boxes, scores, 0.5, 0.3).tolist() == [0]
    assert opencv_nms(boxes, scores, 0.5, 0.6).tolist() == [0, 1]
