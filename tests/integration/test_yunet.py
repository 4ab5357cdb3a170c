"""YuNet on its vendored weights, against OpenCV's own ``cv2.FaceDetectorYN`` on the same files.

The reference is given the canvas our letterbox promises (the image resized to fit the input
size when larger, zero-padded at the bottom and right to a multiple of 32), built here with
OpenCV calls, and its coordinates are mapped back to the image by the resize factors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from model_export.files import sha256_file
from service.errors import ModelPackError
from service.vision.detectors import yunet as yunet_module
from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.refine import ONetLandmarks, RefinedDetector
from service.vision.detectors.yunet import YUNET_FILES, YuNet, padded, yunet_model_file
from service.vision.faces import DetectedFace

LOW = 0.3  # low enough that NMS has work and spurious candidates are compared too
EXACT = DetectorConfig(threshold=LOW, min_face_size=0, max_faces=0)


def _rgb(path: Path) -> npt.NDArray[np.uint8]:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="module")
def photos(insightface_images: Path) -> dict[str, npt.NDArray[np.uint8]]:
    """Faces (a group photo, an aligned crop, a half-size group photo) and photos with none
    (scikit-learn's two sample photos: a temple and a flower)."""
    from sklearn.datasets import load_sample_images

    t1 = _rgb(insightface_images / "t1.jpg")
    china, flower = load_sample_images().images
    return {
        "t1": t1,
        "t1_small": cv2.resize(t1, (640, 443), interpolation=cv2.INTER_AREA),
        "hanks": _rgb(insightface_images / "Tom_Hanks_54745.png"),
        "china": np.ascontiguousarray(china),
        "flower": np.ascontiguousarray(flower),
    }


def _reference(
    model: Path, image: npt.NDArray[np.uint8], size: tuple[int, int], threshold: float
) -> tuple[npt.NDArray[np.float32], float, float]:
    """cv2.FaceDetectorYN's rows ``(K, 15)`` on the promised canvas, and the resize factors."""
    height, width = image.shape[:2]
    scale = min(size[0] / width, size[1] / height, 1.0)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    new_w, new_h = width, height
    if scale < 1.0:
        new_w = min(size[0], round(width * scale))
        new_h = min(size[1], round(height * scale))
        bgr = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.copyMakeBorder(
        bgr, 0, padded(size[1]) - new_h, 0, padded(size[0]) - new_w, cv2.BORDER_CONSTANT, value=0
    )
    reference = cv2.FaceDetectorYN.create(
        str(model), "", (canvas.shape[1], canvas.shape[0]), threshold, 0.3, 5000
    )
    _, rows = reference.detect(canvas)
    found = np.zeros((0, 15), np.float32) if rows is None else np.asarray(rows, np.float32)
    return found, new_w / width, new_h / height


def assert_parity(
    ours: list[DetectedFace], rows: npt.NDArray[np.float32], sx: float, sy: float
) -> None:
    """Same faces in the same order; boxes and landmarks within 0.5 px, scores within 1e-4."""
    assert len(ours) == len(rows), (len(ours), len(rows))
    for face, row in zip(ours, rows, strict=True):
        x, y, w, h = row[:4]
        box = np.array([x / sx, y / sy, (x + w) / sx, (y + h) / sy])
        landmarks = row[4:14].reshape(5, 2) / np.array([sx, sy])
        assert np.abs(face.bbox - box).max() <= 0.5, (face.bbox, box)
        assert np.abs(face.landmarks - landmarks).max() <= 0.5, (face.landmarks, landmarks)
        assert abs(face.score - float(row[14])) <= 1e-4


@pytest.mark.parametrize(
    ("file", "size"),
    [
        ("yunet_s_dynamic.onnx", (640, 640)),
        ("yunet_s_dynamic.onnx", (320, 320)),
        ("yunet_s_dynamic.onnx", (1280, 1280)),
        ("yunet_s_dynamic.onnx", (640, 443)),  # not a multiple of 32: padded to 640×448
        ("yunet_s_640_640.onnx", (640, 640)),
    ],
)
def test_parity_with_cv2_face_detector_yn(
    file: str, size: tuple[int, int], photos: dict[str, npt.NDArray[np.uint8]]
) -> None:
    model = yunet_model_file(file)
    ours = YuNet(model, DetectorConfig(LOW, 0, 0, size))
    compared = 0
    for image in photos.values():
        rows, sx, sy = _reference(model, image, size, LOW)
        assert_parity(ours.detect([image])[0], rows, sx, sy)
        compared += len(rows)
    assert compared >= 8  # the faces of t1 twice and the crop, at least


def test_images_without_a_face_give_none_for_both(photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    model = yunet_model_file()
    ours = YuNet(model, DetectorConfig(min_face_size=0))  # the default threshold
    blank = np.full((480, 640, 3), 128, np.uint8)
    for image in (photos["china"], photos["flower"], blank):
        rows, _, _ = _reference(model, image, (640, 640), ours.threshold)
        assert len(rows) == 0
        assert ours.detect([image])[0] == []


def test_a_swapped_landmark_order_fails_the_parity_check(
    photos: dict[str, npt.NDArray[np.uint8]],
) -> None:
    """The check would catch a detector reporting the eyes (or mouth corners) the other way."""
    model = yunet_model_file()
    image = photos["t1"]
    ours = YuNet(model, EXACT).detect([image])[0]
    rows, sx, sy = _reference(model, image, (640, 640), LOW)
    assert_parity(ours, rows, sx, sy)
    for swap in ([1, 0, 2, 3, 4], [0, 1, 2, 4, 3]):
        swapped = [DetectedFace(f.bbox, f.score, f.landmarks[swap]) for f in ours]
        with pytest.raises(AssertionError):
            assert_parity(swapped, rows, sx, sy)


def test_landmarks_come_in_the_arcface_order(photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    """Image-left eye, image-right eye, nose, image-left and image-right mouth corner."""
    faces = YuNet(config=DetectorConfig()).detect([photos["t1"]])[0]
    assert len(faces) == 6
    for face in faces:
        (lx, ly), (rx, ry), (_, ny), (mlx, mly), (mrx, mry) = face.landmarks
        assert lx < rx and mlx < mrx
        assert max(ly, ry) < ny < min(mly, mry)
        x1, y1, x2, y2 = face.bbox
        assert np.all((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2))
        assert np.all((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2))


def test_t1_six_faces_and_the_aligned_crop_one(photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    detector = YuNet()  # the vendored dynamic file, threshold 0.6, input 640×640
    assert detector.threshold == 0.6 and detector.canvas == (640, 640)
    t1, hanks = detector.detect([photos["t1"], photos["hanks"]])
    assert len(t1) == 6 and all(f.score > 0.8 for f in t1)
    assert [f.score for f in t1] == sorted((f.score for f in t1), reverse=True)
    assert len(hanks) == 1 and hanks[0].width > 60  # 112×112, not enlarged


def test_a_batch_equals_one_image_at_a_time(photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    images = [photos[k] for k in ("t1", "hanks", "china", "t1_small", "t1")]
    for file in YUNET_FILES:  # the fixed file runs one image per call
        detector = YuNet(yunet_model_file(file), EXACT, max_batch=3)
        together = detector.detect(images)
        for image, faces in zip(images, together, strict=True):
            alone = detector.detect([image])[0]
            assert len(alone) == len(faces)
            for a, b in zip(alone, faces, strict=True):
                np.testing.assert_array_equal(a.bbox, b.bbox)
                np.testing.assert_array_equal(a.landmarks, b.landmarks)


def test_settings_are_honoured(photos: dict[str, npt.NDArray[np.uint8]]) -> None:
    t1 = photos["t1"]
    every = YuNet(config=DetectorConfig(min_face_size=0)).detect([t1])[0]
    top2 = YuNet(config=DetectorConfig(max_faces=2)).detect([t1])[0]
    assert [f.score for f in top2] == [f.score for f in every[:2]]
    assert YuNet(config=DetectorConfig(min_face_size=200)).detect([t1])[0] == []
    assert YuNet(config=DetectorConfig(threshold=0.99)).detect([t1])[0] == []
    assert YuNet(config=DetectorConfig(input_size=(320, 320))).canvas == (320, 320)
    fixed = YuNet(yunet_model_file("yunet_s_640_640.onnx"), DetectorConfig(input_size=(320, 320)))
    assert fixed.canvas == (640, 640)  # a fixed-size file runs at its own size


def test_a_modified_vendored_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sha256 recorded in yunet.py is checked when a vendored file is loaded."""
    for name, (sha, size) in YUNET_FILES.items():
        path = yunet_model_file(name)
        assert path.stat().st_size == size and sha256_file(path) == sha
        assert path.parent.joinpath("LICENSE").read_text().count("Apache License") >= 1
    folder = tmp_path / "weights"
    shutil.copytree(yunet_model_file().parent, folder)
    target = folder / "yunet_s_dynamic.onnx"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    monkeypatch.setattr(yunet_module, "_WEIGHTS_DIR", folder)
    with pytest.raises(ModelPackError, match="sha256"):
        yunet_model_file()
    with pytest.raises(ModelPackError, match="no vendored YuNet file"):
        yunet_model_file("yunet_n_dynamic.onnx")


def test_not_a_yunet_network_is_refused(tmp_path: Path) -> None:
    from service.vision.detectors.mtcnn import mtcnn_model_files

    with pytest.raises(ModelPackError, match="not a YuNet network"):
        YuNet(mtcnn_model_files()["onet"])


def _jitter(
    detector: RefinedDetector | YuNet, image: npt.NDArray[np.uint8], shifts: list[int]
) -> float:
    """Mean landmark error (pixels) after cropping ``s`` pixels off the top-left: each point
    should move by exactly ``(−s, −s)``."""
    base = detector.detect([image])[0]
    errors = []
    for s in shifts:
        moved = detector.detect([np.ascontiguousarray(image[s:, s:])])[0]
        for face in base:
            centre = (face.bbox[:2] + face.bbox[2:]) / 2 - s
            other = min(
                moved, key=lambda g: float(np.linalg.norm(g.bbox[:2] / 2 + g.bbox[2:] / 2 - centre))
            )
            errors.append(np.linalg.norm(other.landmarks - (face.landmarks - s), axis=1).mean())
    return float(np.mean(errors))


def test_onet_landmarks_keep_boxes_and_are_steadier_under_shifts(
    photos: dict[str, npt.NDArray[np.uint8]],
) -> None:
    """Why a YuNet pack takes its landmarks from O-Net by default (figures: README)."""
    plain = YuNet(config=DetectorConfig(min_face_size=0))
    refined = RefinedDetector(YuNet(config=DetectorConfig(min_face_size=0)), ONetLandmarks())
    assert refined.name == "yunet+onet"
    image = photos["t1"]
    for a, b in zip(plain.detect([image])[0], refined.detect([image])[0], strict=True):
        np.testing.assert_array_equal(a.bbox, b.bbox)
        assert a.score == b.score
        eye = float(np.linalg.norm(a.landmarks[0] - a.landmarks[1]))
        assert np.linalg.norm(a.landmarks - b.landmarks, axis=1).max() < 0.6 * eye
    shifts = [1, 3, 5, 8]
    assert _jitter(refined, image, shifts) < 0.7 * _jitter(plain, image, shifts)
