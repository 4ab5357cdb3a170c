"""The one runtime interface: a float32 NCHW batch in, the model's first output out.

ONNX Runtime (CPU or CUDA) and TensorRT sit behind it; the rest of the service cannot
tell which one is loaded.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class Runtime(Protocol):
    name: str  # e.g. "onnxruntime", "tensorrt"
    device: str  # e.g. "cpu", "cuda:0"
    precision: str  # "fp32", "fp16", "int8"
    max_batch: int  # the largest batch ``run`` accepts in one call

    def run(self, batch: FloatArray) -> FloatArray:
        """``(N, C, H, W)`` float32 in (N ≤ max_batch), ``(N, …)`` float32 out."""
        ...
