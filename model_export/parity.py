"""Compare two implementations of one recognizer on the same inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from model_export.metadata import RecognizerMetadata

FloatArray = npt.NDArray[np.float32]
Runner = Callable[[FloatArray], FloatArray]

__all__ = ["ParityResult", "compare", "preprocess", "random_crops"]


@dataclass(frozen=True)
class ParityResult:
    batch_size: int
    max_abs_diff: float
    min_cosine: float
    output_shape: tuple[int, ...]

    def passes(self, min_cosine: float) -> bool:
        return self.min_cosine >= min_cosine


def random_crops(n: int, meta: RecognizerMetadata, seed: int = 0) -> npt.NDArray[np.uint8]:
    """``n`` seeded random images shaped like the recognizer's input, uint8 NHWC."""
    rng = np.random.default_rng(seed)
    shape = (n, meta.input_height, meta.input_width, 3)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def preprocess(crops: npt.NDArray[np.uint8], meta: RecognizerMetadata) -> FloatArray:
    """NHWC uint8 crops in ``meta.color_order`` → normalised NCHW float32."""
    x = (crops.astype(np.float32) - meta.input_mean) / meta.input_std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _cosines(a: FloatArray, b: FloatArray) -> FloatArray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    num = np.sum(a64 * b64, axis=1)
    den = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    cos: FloatArray = (num / np.maximum(den, 1e-12)).astype(np.float32)
    return cos


def compare(
    reference: Runner,
    candidate: Runner,
    meta: RecognizerMetadata,
    batch_sizes: Sequence[int] = (1, 32),
    seed: int = 0,
) -> list[ParityResult]:
    """Run both on the same seeded inputs at each batch size; report the worst agreement."""
    results = []
    for i, batch_size in enumerate(batch_sizes):
        inputs = preprocess(random_crops(batch_size, meta, seed + i), meta)
        ref, cand = reference(inputs), candidate(inputs)
        if ref.shape != cand.shape:
            raise ValueError(f"output shapes differ: {ref.shape} vs {cand.shape}")
        results.append(
            ParityResult(
                batch_size=batch_size,
                max_abs_diff=float(np.max(np.abs(ref - cand))),
                min_cosine=float(np.min(_cosines(ref, cand))),
                output_shape=tuple(cand.shape),
            )
        )
    return results
