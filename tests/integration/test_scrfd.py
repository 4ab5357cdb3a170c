"""Our SCRFD equals insightface's ``SCRFD`` on the same ONNX file and image.

No SCRFD weights exist on this machine, so the network is a random-initialised one with
SCRFD's exact ONNX interface (tests/scrfd_net.py); the decoding, letterboxing and NMS under
test are the same whatever the weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.errors import ModelPackError
from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.scrfd import SCRFD
from tests.scrfd_net import export_scrfd_like

EXACT = DetectorConfig(threshold=0.5, min_face_size=0, max_faces=0)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_scrfd_like(tmp_path_factory.mktemp("scrfd") / "det_like.onnx")


@pytest.fixture(scope="module")
def batched_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_scrfd_like(tmp_path_factory.mktemp("scrfd") / "batched.onnx", batched=True)


@pytest.fixture(scope="module")
def images(insightface_images: Path) -> list[np.ndarray]:
    """BGR images: the group photo, and a synthetic portrait-shaped one."""
    t1 = cv2.imread(str(insightface_images / "t1.jpg"))
    rng = np.random.default_rng(0)
    tall = cv2.GaussianBlur(rng.integers(0, 256, (900, 500, 3), dtype=np.uint8), (9, 9), 0)
    return [t1, tall]


def _as_arrays(faces: list) -> tuple[np.ndarray, np.ndarray]:
    det = np.array([np.r_[f.bbox, f.score] for f in faces], np.float32).reshape(-1, 5)
    kps = np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2)
    return det, kps


@pytest.mark.parametrize("size", [(640, 640), (320, 320), (640, 480)])
def test_equals_insightface_scrfd(
    net: Path, images: list[np.ndarray], size: tuple[int, int]
) -> None:
    from insightface.model_zoo.scrfd import SCRFD as Reference

    reference = Reference(model_file=str(net))
    reference.prepare(-1, input_size=size, det_thresh=0.5)
    ours = SCRFD(net, DetectorConfig(0.5, 0, 0, size))
    for bgr in images:
        ref_det, ref_kps = reference.detect(bgr, input_size=size)
        det, kps = _as_arrays(ours.detect([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)])[0])
        assert len(ref_det) > 0
        assert det.shape == ref_det.shape
        np.testing.assert_allclose(det, ref_det, atol=1e-4)
        np.testing.assert_allclose(kps, ref_kps, atol=1e-4)


def test_batched_model_runs_images_together_with_the_same_result(
    batched_net: Path, images: list[np.ndarray]
) -> None:
    detector = SCRFD(batched_net, EXACT)
    rgb = [cv2.cvtColor(b, cv2.COLOR_BGR2RGB) for b in images]
    together = detector.detect(rgb)
    alone = [detector.detect([image])[0] for image in rgb]
    for a, b in zip(together, alone, strict=True):
        da, ka = _as_arrays(a)
        db, kb = _as_arrays(b)
        np.testing.assert_allclose(da, db, atol=1e-4)
        np.testing.assert_allclose(ka, kb, atol=1e-4)


def test_batched_and_unbatched_layouts_agree_with_insightface(
    batched_net: Path, images: list[np.ndarray]
) -> None:
    from insightface.model_zoo.scrfd import SCRFD as Reference

    reference = Reference(model_file=str(batched_net))
    reference.prepare(-1, input_size=(640, 640), det_thresh=0.5)
    ref_det, _ = reference.detect(images[0], input_size=(640, 640))
    det, _ = _as_arrays(SCRFD(batched_net, EXACT).detect([images[0][..., ::-1].copy()])[0])
    np.testing.assert_allclose(det, ref_det, atol=1e-4)


def test_settings_limit_faces(net: Path, images: list[np.ndarray]) -> None:
    rgb = cv2.cvtColor(images[0], cv2.COLOR_BGR2RGB)
    every = SCRFD(net, EXACT).detect([rgb])[0]
    top3 = SCRFD(net, DetectorConfig(0.5, 0, 3)).detect([rgb])[0]
    assert [f.score for f in top3] == [f.score for f in every[:3]]
    sides = sorted({round(min(f.width, f.height)) for f in every})
    assert len(sides) > 1
    cut = sides[-1]  # only the largest boxes pass
    big = SCRFD(net, DetectorConfig(0.5, cut, 0)).detect([rgb])[0]
    assert all(min(f.width, f.height) >= cut for f in big) and 0 < len(big) < len(every)
    strict = SCRFD(net, DetectorConfig(0.99, 0, 0)).detect([rgb])[0]
    assert len(strict) < len(every)


def test_a_recognizer_is_not_a_detector(tmp_path: Path) -> None:
    from model_export.onnx_export import export_onnx, recognizer_from

    model, meta = recognizer_from("mbf", seed=0)
    path = export_onnx(model, meta, tmp_path / "mbf.onnx")
    with pytest.raises(ModelPackError, match="not an SCRFD network"):
        SCRFD(path)
