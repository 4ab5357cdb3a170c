"""The recognition rules on their own: which face is taken, and when a pair matches."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import NoFaceFound, TooManyFaces
from service.gallery.types import Match
from service.models.manifest import ThresholdSpec
from service.recognition.choice import enrolment_face, iou, select_face
from service.recognition.matching import Threshold, accepts, best_match, cosine
from service.vision.faces import DetectedFace


def _face(x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> DetectedFace:
    return DetectedFace(np.array([x1, y1, x2, y2], np.float32), score, np.zeros((5, 2), np.float32))


SMALL_SURE = _face(0, 0, 10, 10, score=0.99)
LARGE_UNSURE = _face(50, 50, 90, 100, score=0.6)


def test_select_face_takes_the_largest_or_the_best_scored() -> None:
    assert select_face([SMALL_SURE, LARGE_UNSURE], "largest", "image") is LARGE_UNSURE
    assert select_face([SMALL_SURE, LARGE_UNSURE], "best", "image") is SMALL_SURE
    with pytest.raises(NoFaceFound, match="no face found in image2"):
        select_face([], "largest", "image2")


def test_enrolment_takes_the_one_face_or_the_one_at_the_box() -> None:
    assert enrolment_face([SMALL_SURE], None, "image 1") is SMALL_SURE
    with pytest.raises(NoFaceFound, match="no face found in image 2"):
        enrolment_face([], None, "image 2")
    with pytest.raises(TooManyFaces, match="image 1 holds 2 faces"):
        enrolment_face([SMALL_SURE, LARGE_UNSURE], None, "image 1")
    picked = enrolment_face([SMALL_SURE, LARGE_UNSURE], [52.0, 48.0, 91.0, 99.0], "image 1")
    assert picked is LARGE_UNSURE
    with pytest.raises(NoFaceFound, match="no face at the given box in image 1"):
        enrolment_face([SMALL_SURE, LARGE_UNSURE], [200.0, 200.0, 240.0, 240.0], "image 1")


def test_iou() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0


def test_a_similarity_at_the_threshold_matches() -> None:
    assert accepts(0.5, 0.5) and not accepts(np.nextafter(0.5, 0.0), 0.5)
    np.testing.assert_array_equal(accepts(np.array([0.2, 0.5, 0.9]), 0.5), [False, True, True])
    near = [Match("a", "ada", 0.7), Match("b", "bob", 0.4)]
    assert best_match(near, 0.7) == near[0]
    assert best_match(near, 0.71) is None
    assert best_match([], -1.0) is None


def test_cosine_is_clipped_to_minus_one_one() -> None:
    v = np.array([0.6, 0.8], np.float32) * np.float32(1.0000001)
    assert np.dot(v, v) > 1.0
    assert cosine(v, v) == 1.0 and cosine(v, -v) == -1.0


def test_the_threshold_in_effect() -> None:
    pack = ThresholdSpec(value=0.42, source="calibrated", far=1e-4)
    assert Threshold.of(None, pack) == Threshold(0.42, "calibrated")
    assert Threshold.of(0.3, pack) == Threshold(0.3, "settings")
    assert Threshold(0.42, "default").or_requested(None) == 0.42
    assert Threshold(0.42, "default").or_requested(-0.1) == -0.1
