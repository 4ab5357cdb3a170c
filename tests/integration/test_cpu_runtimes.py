"""CPU speed options, selected by settings: ONNX Runtime's session options, OpenVINO as a
runtime behind the same interface, and INT8 (Q/DQ) models on both. Speed itself is measured
by ``facerec bench``, never here; these tests pin what runs and what it computes."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from model_export.onnx_export import export_onnx, recognizer_from
from service.inference.onnxruntime_runtime import session_options
from service.models.build import build_pack
from service.models.loading import build_embedder
from service.models.packs import load_pack
from service.settings import Settings
from service.startup import load_models

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="OpenVINO is not installed (pip install 'facerec[openvino]')",
)


def _crops(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 14, 14, 3), dtype=np.uint8)
    return np.ascontiguousarray(small.repeat(8, axis=1).repeat(8, axis=2))


@pytest.fixture(scope="module")
def mbf_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cpu")
    model, meta = recognizer_from("mbf", seed=3)
    rec = export_onnx(model, meta, folder / "mbf.onnx")
    return build_pack(folder / "pack", rec).root


SPIN = "session.intra_op.allow_spinning"


def test_session_options_carry_threads_and_spinning() -> None:
    options: Any = session_options(threads=1, spinning=True)
    assert options.intra_op_num_threads == 1 and options.get_session_config_entry(SPIN) == "1"
    default: Any = session_options()  # the service's default: all cores, no spinning
    assert default.intra_op_num_threads == 0 and default.get_session_config_entry(SPIN) == "0"
    assert Settings().ort_spinning is False


def test_settings_reach_every_onnx_runtime_session(test_pack: Path) -> None:
    settings = Settings(
        pack=test_pack, device="cpu", threads=1, detect_threads=1, ort_spinning=True
    )
    _, pipeline, runtime = load_models(settings)
    assert runtime == "onnxruntime"
    yunet = pipeline.detector.detector  # type: ignore[attr-defined]
    sessions = {
        "recognizer": pipeline.embedder.runtime._session,  # type: ignore[attr-defined]
        "yunet": yunet._session,
        "onet": pipeline.detector.refiner._session,  # type: ignore[attr-defined]
    }
    for name, session in sessions.items():
        options = session.get_session_options()
        assert options.intra_op_num_threads == 1, name
        assert options.get_session_config_entry(SPIN) == "1", name


@needs_openvino
def test_openvino_fp32_equals_onnx_runtime(mbf_pack: Path) -> None:
    pack = load_pack(mbf_pack)
    reference = build_embedder(pack, "cpu", runtime="onnxruntime")
    openvino = build_embedder(pack, "cpu", runtime="openvino", precision="fp32", max_batch=8)
    assert openvino.runtime.name == "openvino" and openvino.runtime.precision == "fp32"
    crops = _crops(13, seed=1)  # more than max_batch: chunked as the interface promises
    cosine = np.sum(reference.embed(crops) * openvino.embed(crops), axis=1)
    assert cosine.min() >= 0.9999


@needs_openvino
def test_openvino_reduced_precision_is_reported_and_close(mbf_pack: Path) -> None:
    pack = load_pack(mbf_pack)
    reference = build_embedder(pack, "cpu", runtime="onnxruntime")
    fast = build_embedder(pack, "cpu", runtime="openvino", precision="fp16")
    assert fast.runtime.precision in ("bf16", "fp16", "fp32")  # what this CPU has
    crops = _crops(8, seed=2)
    assert np.sum(reference.embed(crops) * fast.embed(crops), axis=1).min() >= 0.99


@needs_openvino
def test_openvino_serves_concurrent_callers(mbf_pack: Path) -> None:
    """Each calling thread gets its own infer request (they are not thread-safe)."""
    embedder = build_embedder(load_pack(mbf_pack), "cpu", runtime="openvino", precision="fp32")
    batches = [_crops(3, seed=10 + i) for i in range(6)]
    expected = [embedder.embed(b) for b in batches]
    got: list[np.ndarray | None] = [None] * len(batches)

    def work(i: int) -> None:
        got[i] = embedder.embed(batches[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(expected, got, strict=True):
        assert b is not None
        np.testing.assert_allclose(a, b, atol=1e-6)


@needs_openvino
def test_the_service_runs_openvino_when_asked(mbf_pack: Path) -> None:
    _, pipeline, runtime = load_models(
        Settings(pack=mbf_pack, device="cpu", runtime="openvino", precision="fp32")
    )
    assert runtime == "openvino" and pipeline.embedder.runtime.name == "openvino"


def test_an_int8_pack_runs_on_onnx_runtime_and_openvino_close_to_fp32(
    test_pack: Path, tmp_path: Path, insightface_images: Path
) -> None:
    """`facerec export quantize` → `facerec models build-pack`: INT8 by its Q/DQ nodes, on
    the test pack's r18 calibrated on t1's faces (flipped and rescaled)."""
    from model_export.tensorrt.quantize import quantize_qdq
    from service.recognition.pipeline import Pipeline
    from service.vision.align import align_faces

    pipeline = Pipeline.from_pack(test_pack, device="cpu")
    calib = tmp_path / "calib"
    calib.mkdir()
    image = pipeline.decode((insightface_images / "t1.jpg").read_bytes())
    for flip in (False, True):
        for scale in (1.0, 0.8):
            shown = np.ascontiguousarray(image[:, ::-1]) if flip else image
            shown = cv2.resize(shown, None, fx=scale, fy=scale) if scale != 1.0 else shown
            faces = pipeline.detector.detect([shown])[0]
            for k, crop in enumerate(align_faces(shown, faces)):
                cv2.imwrite(str(calib / f"{flip}_{scale}_{k}.png"), crop[:, :, ::-1])
    fp32 = load_pack(test_pack)
    int8_file = quantize_qdq(fp32.path(fp32.manifest.recognizer.file), calib, tmp_path / "q.onnx")
    int8 = build_pack(tmp_path / "int8", int8_file)
    shifted = np.ascontiguousarray(image[5:, 7:])  # faces the calibration did not see
    crops = align_faces(shifted, pipeline.detector.detect([shifted])[0])
    expected = pipeline.embedder.embed(crops)
    runtimes = ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    for runtime in runtimes:
        embedder = build_embedder(int8, "cpu", runtime=runtime, precision="fp32")
        assert embedder.runtime.precision == "int8"
        assert np.sum(embedder.embed(crops) * expected, axis=1).min() >= 0.99, runtime
