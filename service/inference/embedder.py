"""Aligned crops → L2-normalised embeddings, with the preprocessing the model declares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from model_export.metadata import RecognizerMetadata
from service.inference.runtime import FloatArray, Runtime

__all__ = ["Embedder", "l2_normalise"]


def l2_normalise(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: FloatArray = (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


class Embedder:
    """Runs a recognizer on RGB crops.

    Crops arrive as RGB ``(N, H, W, 3)`` uint8 (the decoder's order). They are put in the
    model's declared ``color_order``, normalised ``(x − mean) / std`` and laid out NCHW, run
    in chunks of at most ``runtime.max_batch``, and the outputs L2-normalised: the cosine of
    two embeddings is then their inner product.
    """

    def __init__(self, runtime: Runtime, meta: RecognizerMetadata) -> None:
        self.runtime = runtime
        self.meta = meta
        self.input_size = meta.input_width
        self.embedding_size = meta.embedding_size
        self._scale = np.float32(1.0 / meta.input_std)
        self._mean = np.float32(meta.input_mean)

    def preprocess(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        expected = (self.meta.input_height, self.meta.input_width, 3)
        if crops.ndim != 4 or crops.shape[1:] != expected:
            raise ValueError(
                f"crops must be (N, {expected[0]}, {expected[1]}, 3), got {crops.shape}"
            )
        if self.meta.color_order == "BGR":
            crops = crops[..., ::-1]
        x = crops.transpose(0, 3, 1, 2).astype(np.float32)
        x -= self._mean
        x *= self._scale
        return np.ascontiguousarray(x)

    def embed(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        """``(N, E)`` unit-norm float32 embeddings for ``N`` RGB crops."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), np.float32)
        run_crops = getattr(self.runtime, "run_crops", None)
        if run_crops is not None:  # the runtime preprocesses on its device
            raw = np.asarray(run_crops(crops), np.float32).reshape(len(crops), -1)
        else:
            x = self.preprocess(crops)
            step = max(1, self.runtime.max_batch)
            outputs = [self.runtime.run(x[i : i + step]) for i in range(0, len(x), step)]
            raw = np.concatenate(outputs, axis=0).reshape(len(x), -1)
        if raw.shape[1] != self.embedding_size:
            raise ValueError(
                f"the model gave {raw.shape[1]}-d outputs, its metadata says {self.embedding_size}"
            )
        return l2_normalise(raw)
