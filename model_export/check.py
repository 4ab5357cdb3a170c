"""``facerec export check``: PyTorch against ONNX Runtime on the same inputs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch

from model_export.files import sha256_file
from model_export.onnx_export import recognizer_from
from model_export.onnx_io import ort_runner, read_metadata
from model_export.parity import FloatArray, ParityResult, Runner, compare

__all__ = ["check_onnx", "torch_runner"]

log = logging.getLogger(__name__)


def torch_runner(model: torch.nn.Module) -> Runner:
    def run(batch: FloatArray) -> FloatArray:
        with torch.inference_mode():
            out: FloatArray = model(torch.from_numpy(batch)).float().numpy()
        return np.asarray(out, dtype=np.float32)

    return run


def check_onnx(
    onnx_path: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    batch_sizes: Sequence[int] = (1, 32),
) -> list[ParityResult]:
    """Rebuild the PyTorch model the ONNX file came from and compare the two.

    The file's metadata names the architecture; a random-initialised export is rebuilt from
    its seed, a trained one needs ``checkpoint``, whose sha256 must match the one recorded.
    """
    meta = read_metadata(onnx_path)
    if meta.random_init:
        if meta.seed is None:
            raise ValueError(f"{onnx_path}: random-initialised but no seed recorded")
        model, _ = recognizer_from(meta.arch, seed=meta.seed, embedding_size=meta.embedding_size)
    else:
        if checkpoint is None:
            raise ValueError(
                f"{onnx_path} was exported from a checkpoint; pass it with --checkpoint"
            )
        digest = sha256_file(checkpoint)
        if meta.checkpoint_sha256 and digest != meta.checkpoint_sha256:
            raise ValueError(
                f"{checkpoint} (sha256 {digest[:12]}…) is not the checkpoint {onnx_path} was "
                f"exported from (sha256 {meta.checkpoint_sha256[:12]}…)"
            )
        model, _ = recognizer_from(
            meta.arch, checkpoint=checkpoint, embedding_size=meta.embedding_size
        )
    log.info("running PyTorch and ONNX Runtime on batches of %s", list(batch_sizes))
    return compare(torch_runner(model), ort_runner(onnx_path), meta, batch_sizes)
