"""Greedy NMS: union and min overlap, against a plain reference and insightface's own NMS."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from service.vision.detectors.nms import nms


def _random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered boxes so that many overlap; distinct scores."""
    centres = rng.uniform(0, 200, (n, 2))
    sizes = rng.uniform(5, 60, (n, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n
    return boxes, scores


def _plain(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: Literal["union", "min"]
) -> list[int]:
    """Box by box, as the textbook describes it."""

    def area(b: np.ndarray) -> float:
        return float((b[2] - b[0] + 1) * (b[3] - b[1] + 1))

    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda k: -float(scores[k])):
        ok = True
        for j in kept:
            a, b = boxes[i], boxes[j]
            w = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0]) + 1))
            h = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1]) + 1))
            inter = w * h
            denom = min(area(a), area(b)) if mode == "min" else area(a) + area(b) - inter
            if inter / denom > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_equals_the_plain_algorithm(mode: Literal["union", "min"], threshold: float) -> None:
    rng = np.random.default_rng(int(threshold * 10))
    boxes, scores = _random_boxes(rng, 300)
    kept = nms(boxes, scores, threshold, mode=mode)
    assert kept.dtype == np.intp
    assert kept.tolist() == _plain(boxes, scores, threshold, mode)


def test_default_is_union_and_equals_insightface_scrfd_nms() -> None:
    scrfd = pytest.importorskip("insightface.model_zoo.scrfd")
    boxes, scores = _random_boxes(np.random.default_rng(7), 500)
    reference = scrfd.SCRFD.__new__(scrfd.SCRFD)  # only its nms(): no model needed
    reference.nms_thresh = 0.4
    expected = reference.nms(np.hstack([boxes, scores[:, None]]))
    assert nms(boxes, scores, 0.4).tolist() == [int(i) for i in expected]
    assert nms(boxes, scores, 0.4).tolist() == nms(boxes, scores, 0.4, mode="union").tolist()


def test_min_mode_removes_a_box_inside_a_better_one() -> None:
    boxes = np.array([[0, 0, 99, 99], [10, 10, 39, 39]], np.float32)  # 100² and 30² pixels
    scores = np.array([0.9, 0.8], np.float32)
    # intersection over union is 900 / 10000: union keeps both; over the smaller area it is 1
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0]


def test_order_is_by_score_and_ties_keep_input_order() -> None:
    boxes = np.array([[0, 0, 9, 9], [100, 100, 109, 109], [200, 0, 209, 9]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.5], np.float32), 0.4).tolist() == [1, 0, 2]


def test_threshold_is_exclusive() -> None:
    # two 10×10 boxes overlapping in half: IoU = 50 / 150 = 1/3 exactly
    boxes = np.array([[0, 0, 9, 9], [5, 0, 14, 9]], np.float64)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 1 / 3).tolist() == [0, 1]
    assert nms(boxes, scores, 0.33).tolist() == [0]


def test_no_boxes() -> None:
    kept = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert kept.shape == (0,) and kept.dtype == np.intp
