"""An engine cache: find the engine for (ONNX, precision, profile, this GPU) or build it.

The service calls :func:`ensure_engine` at start (engines are built once, on the first start
on a given GPU, and reused from the cache volume after); ``facerec export tensorrt`` calls it
from the command line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from model_export.files import sha256_file
from model_export.tensorrt.build import build_engine, tensorrt_version
from model_export.tensorrt.engine_key import (
    BatchProfile,
    EngineKey,
    ForeignEngine,
    Precision,
    check_engine,
    engine_path,
    gpu_environment,
    read_key,
)
from model_export.tensorrt.quantize import is_quantized, quantize_qdq

__all__ = ["ensure_engine", "prepare_onnx", "wanted_key"]

log = logging.getLogger(__name__)


def prepare_onnx(
    onnx_path: Path, precision: Precision, cache_dir: Path, calib_dir: Path | None
) -> Path:
    """The ONNX file to build from: for INT8, a Q/DQ model (quantized here if need be)."""
    quantized = is_quantized(onnx_path)
    if precision != "int8":
        if quantized:
            raise ValueError(f"{onnx_path} holds Q/DQ nodes: build it with --precision int8")
        return onnx_path
    if quantized:
        return onnx_path
    if calib_dir is None:
        raise ValueError(
            f"{onnx_path} is a float model: INT8 needs --calib-dir with aligned crops to "
            "calibrate on (or a model from `facerec export quantize`)"
        )
    out = cache_dir / f"{sha256_file(onnx_path)[:12]}.int8-qdq.onnx"
    if not out.is_file():
        quantize_qdq(onnx_path, calib_dir, out)
    return out


def wanted_key(
    onnx_path: Path, precision: Precision, profile: BatchProfile, device: int = 0
) -> EngineKey:
    """The key of the engine this machine needs (raises if TensorRT or CUDA is missing)."""
    env = gpu_environment(tensorrt_version(), device)
    return EngineKey(sha256_file(onnx_path), precision, profile, env)


def ensure_engine(
    onnx_path: str | os.PathLike[str],
    precision: Precision,
    profile: BatchProfile,
    cache_dir: str | os.PathLike[str],
    *,
    calib_dir: str | os.PathLike[str] | None = None,
    device: int = 0,
    workspace_gb: float = 4.0,
    out: str | os.PathLike[str] | None = None,
) -> tuple[Path, EngineKey, Path]:
    """``(engine, key, onnx built from)``: reused when the cache holds a matching engine."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    source = prepare_onnx(Path(onnx_path), precision, cache, Path(calib_dir) if calib_dir else None)
    key = wanted_key(source, precision, profile, device)
    target = Path(out) if out is not None else engine_path(cache, key)
    if target.is_file():
        try:
            check_engine(read_key(target), key, str(target))
            log.info("reusing %s", target)
            return target, key, source
        except ForeignEngine as exc:
            log.warning("%s; rebuilding", exc)
    build_engine(
        source, key, target, workspace_gb=workspace_gb, timing_cache=cache / "timing.cache"
    )
    return target, key, source
