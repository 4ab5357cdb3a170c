"""Our SCRFD equals insightface's ``SCRFD`` on the same ONNX file and image.

No SCRFD weights exist on this machine, so the network is a random-initialised one with
SCRFD's exact ONNX interface (tests/scrfd_net.py); the letterboxing, decoding and NMS under
test are the same whatever the weights. insightface takes BGR, our detector RGB.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from service.errors import ModelPackError
from service.vision.detectors.base import DetectorConfig
from service.vision.detectors.scrfd import SCRFD
from service.vision.faces import DetectedFace
from tests.scrfd_net import export_scrfd_like

# insightface has neither a size floor nor a default face limit
EXACT = DetectorConfig(threshold=0.5, min_face_size=0, max_faces=0)
TOL = 1e-4


def _export(folder: Path, name: str, **kwargs: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_scrfd_like(folder / name, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same weights (seed 0) in four interface variants."""
    folder = tmp_path_factory.mktemp("scrfd")
    return {
        "plain": _export(folder, "plain.onnx"),  # batch 1, outputs (K, C), like det_10g
        "batched": _export(folder, "batched.onnx", batched=True),  # free batch, (N, K, C)
        "batch2": _export(folder, "batch2.onnx", batched=True, batch=2),  # fixed batch 2
        "fixed320": _export(folder, "fixed320.onnx", input_size=(320, 320)),
    }


@pytest.fixture(scope="module")
def images(insightface_images: Path) -> list[np.ndarray]:
    """BGR: the group photo (wide), a synthetic tall image, a small one that is upscaled."""
    t1 = cv2.imread(str(insightface_images / "t1.jpg"))
    assert t1 is not None
    rng = np.random.default_rng(0)
    tall = cv2.GaussianBlur(rng.integers(0, 256, (900, 500, 3), dtype=np.uint8), (9, 9), 0)
    small = cv2.resize(t1, (210, 140), interpolation=cv2.INTER_AREA)
    return [t1, tall, small]


def _rgb(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _as_arrays(faces: list[DetectedFace]) -> tuple[np.ndarray, np.ndarray]:
    det = np.array([np.r_[f.bbox, f.score] for f in faces], np.float32).reshape(-1, 5)
    kps = np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2)
    return det, kps


def _by_position(det: np.ndarray) -> np.ndarray:
    return np.lexsort((det[:, 1], det[:, 0], -det[:, 4]))


def _reference(path: Path, size: tuple[int, int]) -> object:
    from insightface.model_zoo.scrfd import SCRFD as Reference

    reference = Reference(model_file=str(path))
    reference.prepare(-1, input_size=size, det_thresh=0.5, nms_thresh=0.4)
    return reference


def _assert_same(faces: list[DetectedFace], ref: tuple[np.ndarray, np.ndarray]) -> None:
    det, kps = _as_arrays(faces)
    ref_det, ref_kps = ref
    assert det.shape == ref_det.shape
    np.testing.assert_allclose(det, ref_det, rtol=0, atol=TOL)
    np.testing.assert_allclose(kps, ref_kps, rtol=0, atol=TOL)


@pytest.mark.parametrize("size", [(640, 640), (320, 320), (640, 480)])
def test_equals_insightface_scrfd(
    nets: dict[str, Path], images: list[np.ndarray], size: tuple[int, int]
) -> None:
    reference = _reference(nets["plain"], size)
    ours = SCRFD(nets["plain"], DetectorConfig(0.5, 0, 0, size))
    for bgr in images:
        ref = reference.detect(bgr, input_size=size)  # type: ignore[attr-defined]
        assert len(ref[0]) > 20  # the random net finds "faces" on every level
        _assert_same(ours.detect([_rgb(bgr)])[0], ref)


def test_a_fixed_input_size_wins_over_the_config(
    nets: dict[str, Path], images: list[np.ndarray]
) -> None:
    ours = SCRFD(nets["fixed320"], EXACT)  # EXACT asks for 640×640
    assert ours.input_size == (320, 320)
    reference = _reference(nets["fixed320"], (320, 320))
    _assert_same(ours.detect([_rgb(images[0])])[0], reference.detect(images[0]))  # type: ignore[attr-defined]


def test_the_model_can_be_given_as_bytes(nets: dict[str, Path], images: list[np.ndarray]) -> None:
    from_path = SCRFD(nets["plain"], EXACT).detect([_rgb(images[0])])[0]
    from_bytes = SCRFD(nets["plain"].read_bytes(), EXACT).detect([_rgb(images[0])])[0]
    _assert_same(from_bytes, _as_arrays(from_path))


@pytest.mark.parametrize("variant", ["batched", "batch2"])
def test_batched_models_equal_one_by_one_and_insightface(
    nets: dict[str, Path], images: list[np.ndarray], variant: str
) -> None:
    rgb = [_rgb(b) for b in images]
    detector = SCRFD(nets[variant], EXACT, max_batch=2)
    together = detector.detect(rgb)  # runs of two images (the last one padded for batch2)
    alone = [SCRFD(nets["plain"], EXACT).detect([image])[0] for image in rgb]
    for a, b in zip(together, alone, strict=True):
        _assert_same(a, _as_arrays(b))
    # insightface reads the first image of a batched output: same result on the same file
    if variant == "batched":
        reference = _reference(nets[variant], (640, 640))
        _assert_same(together[0], reference.detect(images[0]))  # type: ignore[attr-defined]


def test_no_images_no_runs(nets: dict[str, Path]) -> None:
    assert SCRFD(nets["batched"], EXACT).detect([]) == []


@pytest.mark.parametrize(("by", "metric"), [("center", "default"), ("area", "max")])
def test_max_faces_can_rank_like_insightface_max_num(
    nets: dict[str, Path], images: list[np.ndarray], by: str, metric: str
) -> None:
    reference = _reference(nets["plain"], (640, 640))
    ours = SCRFD(nets["plain"], DetectorConfig(0.5, 0, 5), max_faces_by=by)  # type: ignore[arg-type]
    for bgr in images[:2]:
        ref_det, ref_kps = reference.detect(bgr, max_num=5, metric=metric)  # type: ignore[attr-defined]
        det, kps = _as_arrays(ours.detect([_rgb(bgr)])[0])
        assert det[:, 4].tolist() == sorted(det[:, 4], reverse=True)
        # the same five faces; insightface lists them by rank, we by score (the random net
        # gives equal scores to equal features, e.g. in the padding: compare as sets)
        mine, theirs = _by_position(det), _by_position(ref_det)
        _assert_same(
            [
                DetectedFace(d[:4], float(d[4]), k)
                for d, k in zip(det[mine], kps[mine], strict=True)
            ],
            (ref_det[theirs], ref_kps[theirs]),
        )


def test_settings_limit_faces(nets: dict[str, Path], images: list[np.ndarray]) -> None:
    rgb = _rgb(images[0])
    every = SCRFD(nets["plain"], EXACT).detect([rgb])[0]
    assert [f.score for f in every] == sorted((f.score for f in every), reverse=True)
    top3 = SCRFD(nets["plain"], DetectorConfig(0.5, 0, 3)).detect([rgb])[0]
    assert [f.score for f in top3] == [f.score for f in every[:3]]
    sides = sorted({round(min(f.width, f.height)) for f in every})
    assert len(sides) > 1
    cut = sides[-1]  # only the largest boxes pass
    big = SCRFD(nets["plain"], DetectorConfig(0.5, cut, 0)).detect([rgb])[0]
    assert all(min(f.width, f.height) >= cut for f in big) and 0 < len(big) < len(every)
    strict = SCRFD(nets["plain"], DetectorConfig(0.9, 0, 0)).detect([rgb])[0]
    assert all(f.score >= 0.9 for f in strict) and len(strict) < len(every)


def test_input_size_must_suit_the_strides(nets: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        SCRFD(nets["plain"], DetectorConfig(input_size=(640, 500)))


def test_what_is_not_an_scrfd_network_is_refused(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["y"])],
        "recognizer_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 37632])],
    )
    path = tmp_path / "rec.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    with pytest.raises(ModelPackError, match="not an SCRFD network"):
        SCRFD(path)
    with pytest.raises(ModelPackError, match="could not load"):
        SCRFD(tmp_path / "missing.onnx")
    with pytest.raises(ModelPackError, match="could not load"):
        SCRFD(b"not a model")
