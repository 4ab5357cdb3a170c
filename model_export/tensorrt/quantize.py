"""INT8 by explicit quantization: Q/DQ nodes calibrated on a folder of aligned crops.

TensorRT 10 deprecated its implicit INT8 calibrators; an explicitly quantized network
carries its scales as ``QuantizeLinear``/``DequantizeLinear`` nodes and TensorRT honours
them. ONNX Runtime's static quantizer inserts them: symmetric INT8 activations and
per-channel symmetric INT8 weights (zero points 0, as TensorRT requires), on the inputs of
``Conv``, ``Gemm`` and ``MatMul`` — the layers TensorRT runs in INT8; biases stay float. The
result still runs on ONNX Runtime (CPU included), so its accuracy against FP32 is measured anywhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from model_export.metadata import RecognizerMetadata
from model_export.onnx_io import read_metadata, read_props, write_props
from model_export.parity import preprocess

__all__ = [
    "QUANTIZATION_KEY",
    "agreement",
    "calibration_crops",
    "is_quantized",
    "quantize_qdq",
]

log = logging.getLogger(__name__)

QUANTIZATION_KEY = "facerec.quantization"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]


def calibration_crops(
    folder: str | os.PathLike[str], meta: RecognizerMetadata, max_images: int = 512
) -> npt.NDArray[np.uint8]:
    """Up to ``max_images`` crops from ``folder`` (recursively, sorted), NHWC in the model's
    colour order, resized to its input size where they are not already."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)[:max_images]
    size = (meta.input_width, meta.input_height)
    crops = []
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            log.warning("skipping %s: not a readable image", path)
            continue
        if bgr.shape[1::-1] != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        crops.append(bgr if meta.color_order == "BGR" else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not crops:
        raise ValueError(f"no readable images (jpg, png, bmp, webp) in {root}")
    return np.stack(crops)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over preprocessed batches."""

    def __init__(self, input_name: str, batches: Sequence[npt.NDArray[np.float32]]) -> None:
        self._input_name = input_name
        self._batches = batches
        self._iter: Iterator[npt.NDArray[np.float32]] = iter(batches)

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        batch = next(self._iter, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def is_quantized(path: str | os.PathLike[str]) -> bool:
    """Whether the ONNX file already holds Q/DQ nodes."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)


def quantize_qdq(
    model: str | os.PathLike[str],
    calib_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    max_images: int = 512,
    batch_size: int = 16,
    method: str = "minmax",
) -> Path:
    """Write a Q/DQ-quantized copy of ``model`` at ``out``, keeping its metadata."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ValueError(f"calibration method must be one of {', '.join(methods)}")
    meta = read_metadata(model)
    crops = calibration_crops(calib_dir, meta, max_images)
    log.info("calibrating on %d crops from %s (%s)", len(crops), calib_dir, method)
    data = preprocess(crops, meta)
    batches = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    quantize_static(
        str(model),
        str(tmp),
        _Reader(meta.input_name, batches),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=_QUANTIZED_OPS,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[method],
        # TensorRT takes biases in float and quantizes nothing but weights and activations
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
    )
    props = read_props(model)
    props[QUANTIZATION_KEY] = f"int8-qdq symmetric per-channel, {method}, {len(crops)} crops"
    write_props(tmp, props, target)
    tmp.unlink(missing_ok=True)
    log.info("wrote %s", target)
    return target


def agreement(
    reference: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    crops: npt.NDArray[np.uint8],
) -> tuple[float, float]:
    """``(min, mean)`` cosine between two models' embeddings of the same crops."""
    from model_export.onnx_io import ort_runner

    meta = read_metadata(reference)
    x = preprocess(crops, meta)
    a, b = ort_runner(reference)(x), ort_runner(candidate)(x)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min()), float(cos.mean())
