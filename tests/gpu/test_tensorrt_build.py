"""TensorRT build and parity, on a machine that has TensorRT and a GPU (skipped elsewhere).

Thresholds from the design card: cosine ≥ 0.9999 against ONNX Runtime FP32 for an FP32
engine, ≥ 0.999 for FP16; INT8 (explicit Q/DQ) is reported, not asserted beyond sanity.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model_export.onnx_export import export_onnx, recognizer_from
from model_export.onnx_io import ort_runner, read_metadata
from model_export.parity import compare
from model_export.tensorrt.engine_key import BatchProfile

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed on this machine")

from model_export.tensorrt.build import TensorRTEngine  # noqa: E402
from model_export.tensorrt.engines import ensure_engine  # noqa: E402

PROFILE = BatchProfile(1, 32, 64)


@pytest.fixture(scope="module")
def r18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, meta = recognizer_from("r18", seed=0)
    return export_onnx(model, meta, tmp_path_factory.mktemp("gpu") / "r18.onnx")


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for i in range(32):
        img = cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (7, 7), 0)
        cv2.imwrite(str(folder / f"{i}.png"), img)
    return folder


@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.9999), ("fp16", 0.999), ("int8", 0.9)])
def test_engine_matches_onnxruntime(
    r18: Path, crops: Path, tmp_path: Path, precision: str, floor: float
) -> None:
    engine, key, _ = ensure_engine(r18, precision, PROFILE, tmp_path, calib_dir=crops)  # type: ignore[arg-type]
    runner = TensorRTEngine(engine, key)
    results = compare(ort_runner(r18), runner.run, read_metadata(r18), (1, 32))
    for r in results:
        print(f"{precision} b{r.batch_size}: cos {r.min_cosine:.6f} diff {r.max_abs_diff:.3e}")
        assert r.output_shape == (r.batch_size, 512)
        assert r.min_cosine >= floor
