"""The TensorRT-only part: build an engine from ONNX, and run one. Kept small on purpose.

Written against TensorRT 10's Python API (``Builder.create_network(0)`` is explicit-batch,
the only mode in 10; ``build_serialized_network``; named I/O tensors with
``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``). Device buffers are
PyTorch CUDA tensors, so nothing beyond TensorRT and PyTorch is needed on a GPU host.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from model_export.files import atomic_write_bytes
from model_export.parity import FloatArray
from model_export.tensorrt.engine_key import (
    BatchProfile,
    CudaUnavailable,
    EngineKey,
    check_engine,
    read_key,
    write_key,
)

__all__ = ["TensorRTEngine", "TensorRTUnavailable", "build_engine", "import_tensorrt"]

log = logging.getLogger(__name__)


class TensorRTUnavailable(Exception):
    """TensorRT cannot be imported, or it cannot reach a CUDA GPU."""


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            f"TensorRT is not installed (pip install tensorrt, or use a TensorRT container); {exc}"
        ) from None
    return tensorrt


def tensorrt_version() -> str:
    return str(import_tensorrt().__version__)


def build_engine(
    onnx_path: str | os.PathLike[str],
    key: EngineKey,
    out: str | os.PathLike[str],
    *,
    workspace_gb: float = 4.0,
    timing_cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Build the engine ``key`` describes from ``onnx_path`` and write it with its key."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if key.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if key.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # scales come from the graph's Q/DQ nodes
    tensor = network.get_input(0)
    _, c, h, w = tensor.shape
    profile = builder.create_optimization_profile()
    p = key.profile
    profile.set_shape(tensor.name, (p.min, c, h, w), (p.opt, c, h, w), (p.max, c, h, w))
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache is not None else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), False)
    log.info("building %s engine, batch profile %s (this takes minutes)", key.precision, p)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    target = Path(out)
    atomic_write_bytes(target, bytes(serialized))
    write_key(target, key)
    if cache_path is not None:
        atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


class TensorRTEngine:
    """A deserialized engine with one execution context, run on PyTorch CUDA buffers."""

    def __init__(self, path: str | os.PathLike[str], wanted: EngineKey, device: int = 0) -> None:
        check_engine(read_key(path), wanted, str(path))  # before TensorRT reads a byte
        trt = import_tensorrt()
        try:
            import torch
        except ImportError as exc:
            raise TensorRTUnavailable(
                "the TensorRT runtime needs PyTorch for CUDA buffers"
            ) from exc
        if not torch.cuda.is_available():
            raise CudaUnavailable("TensorRT needs a CUDA GPU; none is visible")
        self._torch = torch
        self._device = torch.device("cuda", device)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self._engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {path}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        modes = {n: self._engine.get_tensor_mode(n) for n in names}
        self.input_name = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        self.profile: BatchProfile = wanted.profile
        self.max_batch = wanted.profile.max
        self._stream = torch.cuda.Stream(self._device)  # type: ignore[no-untyped-call]

    def run(self, batch: FloatArray) -> FloatArray:
        torch = self._torch
        n = batch.shape[0]
        if not 1 <= n <= self.max_batch:
            raise ValueError(f"batch of {n} outside the engine's profile {self.profile}")
        with torch.cuda.stream(self._stream):
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device, non_blocking=True)
            self._context.set_input_shape(self.input_name, tuple(x.shape))
            out_shape = tuple(self._context.get_tensor_shape(self.output_name))
            y = torch.empty(out_shape, dtype=torch.float32, device=self._device)
            self._context.set_tensor_address(self.input_name, x.data_ptr())
            self._context.set_tensor_address(self.output_name, y.data_ptr())
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            result = y.cpu()
        self._stream.synchronize()
        return np.asarray(result.numpy(), dtype=np.float32)
