"""OpenVINO (PyPI ``openvino``, Intel's CPU runtime) behind the runtime interface, CPU only.

It reads the same ONNX file as ONNX Runtime. ``precision="fp32"`` runs it in f32 exactly;
``"fp16"`` lets OpenVINO pick its CPU default, bf16 (or f16) where the processor has it and
f32 elsewhere; a model holding Q/DQ nodes (``facerec export quantize``) runs in INT8 either
way. The precision actually used is read back from the compiled model and reported.
OpenVINO's infer requests are not thread-safe: each calling thread gets its own.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from service.errors import ModelPackError
from service.inference.runtime import FloatArray

__all__ = ["OpenVINORuntime", "openvino_available"]

log = logging.getLogger(__name__)

_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class OpenVINORuntime:
    """One compiled OpenVINO model over a single-input ONNX file, on the CPU."""

    name = "openvino"

    def __init__(
        self,
        model: str | os.PathLike[str],
        device: str = "cpu",
        threads: int = 0,
        max_batch: int = 64,
        precision: str = "fp32",
        hint: str = "LATENCY",
    ) -> None:
        if device not in ("cpu", "auto"):
            raise ModelPackError(f"the OpenVINO runtime runs on the CPU here, not {device!r}")
        try:
            import openvino as ov
        except ImportError as exc:
            raise ModelPackError(
                "FACEREC_RUNTIME=openvino needs OpenVINO: pip install 'facerec[openvino]'"
            ) from exc
        from model_export.tensorrt.quantize import is_quantized

        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if precision == "fp32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            network = core.read_model(os.fspath(model))
            if len(network.inputs) != 1:
                raise ModelPackError(
                    f"expected a model with one input, found {len(network.inputs)}"
                )
            shape = network.inputs[0].get_partial_shape()
            if shape.rank.get_length() == 4 and shape[0].is_static:
                shape[0] = -1  # a free batch axis, as the exported files have
                network.reshape(shape)
            self._compiled = core.compile_model(network, "CPU", config)
        except ModelPackError:
            raise
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise ModelPackError(f"OpenVINO could not load the model: {exc}") from exc
        hinted = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        used = hinted.to_string() if hasattr(hinted, "to_string") else str(hinted)
        self.precision = "int8" if is_quantized(model) else _PRECISION_NAMES.get(used, used)
        self.device = "cpu"
        self.max_batch = max_batch
        self._local = threading.local()
        log.info(
            "OpenVINO %s on the CPU: %s, %s threads",
            ov.__version__,
            self.precision,
            self._compiled.get_property("INFERENCE_NUM_THREADS") or "all",
        )

    def run(self, batch: FloatArray) -> FloatArray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        out = request.infer({0: np.ascontiguousarray(batch, np.float32)})
        return np.array(out[0], dtype=np.float32)  # a copy: the request reuses its buffer
