"""TensorRT behind the runtime interface, on engines built and keyed by the export stage.

At start the engine for (recognizer ONNX, precision, batch profile, this GPU and TensorRT) is
taken from the engine cache or built into it once; an engine built for anything else is
refused and rebuilt, never loaded. Needs TensorRT, a CUDA GPU and PyTorch (CUDA buffers).
"""

from __future__ import annotations

import os

from model_export.tensorrt.engine_key import BatchProfile, Precision
from service.inference.runtime import FloatArray

__all__ = ["TensorRTRuntime"]


class TensorRTRuntime:
    name = "tensorrt"

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        cache_dir: str | os.PathLike[str],
        precision: Precision = "fp16",
        profile: BatchProfile | None = None,
        device: int = 0,
        calib_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from model_export.tensorrt.build import TensorRTEngine
        from model_export.tensorrt.engines import ensure_engine

        profile = profile or BatchProfile(1, 64, 256)
        engine, key, _ = ensure_engine(
            onnx_path, precision, profile, cache_dir, calib_dir=calib_dir, device=device
        )
        self._engine = TensorRTEngine(engine, key, device)
        self.device = f"cuda:{device}"
        self.precision: str = precision
        self.max_batch = profile.max
        self.engine_path = engine

    def run(self, batch: FloatArray) -> FloatArray:
        return self._engine.run(batch)
