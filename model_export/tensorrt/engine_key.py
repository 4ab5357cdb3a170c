"""What an engine was built for, and the refusal of an engine built for something else.

A TensorRT engine is valid only for the TensorRT version and the GPU (model and compute
capability) it was built with, and it embodies one ONNX file, one precision and one batch
profile. All of that is its :class:`EngineKey`: it names the engine's file and is stored
beside it (``<engine>.json``), and a load compares the stored key with the wanted one
before TensorRT ever sees the bytes. Pure Python: no TensorRT or CUDA import here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "PRECISIONS",
    "BatchProfile",
    "EngineKey",
    "Environment",
    "ForeignEngine",
    "check_engine",
    "engine_path",
    "gpu_environment",
    "read_key",
    "write_key",
]

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")


class ForeignEngine(Exception):
    """An engine built for another GPU, TensorRT version, model, precision or profile."""


@dataclass(frozen=True)
class BatchProfile:
    """The optimization profile of the dynamic batch axis: min ≤ opt ≤ max."""

    min: int = 1
    opt: int = 64
    max: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(
                f"batch profile needs 1 <= min <= opt <= max, got {self.min}/{self.opt}/{self.max}"
            )

    def __str__(self) -> str:
        return f"{self.min}/{self.opt}/{self.max}"


@dataclass(frozen=True)
class Environment:
    """The build environment an engine is bound to."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def __str__(self) -> str:
        return f"{self.gpu_name} (sm {self.compute_capability}), TensorRT {self.tensorrt_version}"


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    precision: Precision
    profile: BatchProfile
    environment: Environment

    def digest(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def file_name(self) -> str:
        p = self.profile
        batch = f"b{p.min}-{p.opt}-{p.max}"
        return f"{self.onnx_sha256[:12]}-{self.precision}-{batch}-{self.digest()}.engine"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineKey:
        try:
            precision = data["precision"]
            if precision not in PRECISIONS:
                raise ValueError(f"unknown precision {precision!r}")
            return cls(
                onnx_sha256=str(data["onnx_sha256"]),
                precision=precision,
                profile=BatchProfile(**data["profile"]),
                environment=Environment(**data["environment"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ForeignEngine(f"unreadable engine key: {exc}") from exc


def engine_path(cache_dir: str | os.PathLike[str], key: EngineKey) -> Path:
    """Where the engine for ``key`` lives in an engine cache."""
    return Path(cache_dir) / key.file_name()


def _sidecar(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def write_key(engine: str | os.PathLike[str], key: EngineKey) -> Path:
    path = _sidecar(Path(engine))
    path.write_text(json.dumps(key.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_key(engine: str | os.PathLike[str]) -> EngineKey:
    path = _sidecar(Path(engine))
    if not path.is_file():
        raise ForeignEngine(
            f"{engine} has no key file ({path.name}): it was not built by `facerec export "
            "tensorrt`, so what it was built for cannot be checked"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ForeignEngine(f"{path} is not valid JSON: {exc}") from exc
    return EngineKey.from_dict(data)


def check_engine(stored: EngineKey, wanted: EngineKey, engine: str = "engine") -> None:
    """Raise :class:`ForeignEngine` naming every difference between the two keys."""
    problems = []
    have, need = stored.environment, wanted.environment
    if (have.gpu_name, have.compute_capability) != (need.gpu_name, need.compute_capability):
        problems.append(
            f"built for GPU {have.gpu_name!r} (sm {have.compute_capability}), this machine "
            f"has {need.gpu_name!r} (sm {need.compute_capability})"
        )
    if have.tensorrt_version != need.tensorrt_version:
        problems.append(
            f"built with TensorRT {have.tensorrt_version}, this machine has {need.tensorrt_version}"
        )
    if stored.onnx_sha256 != wanted.onnx_sha256:
        problems.append(
            f"built from ONNX {stored.onnx_sha256[:12]}…, wanted {wanted.onnx_sha256[:12]}…"
        )
    if stored.precision != wanted.precision:
        problems.append(f"built for {stored.precision}, wanted {wanted.precision}")
    if stored.profile != wanted.profile:
        problems.append(f"built for batch profile {stored.profile}, wanted {wanted.profile}")
    if problems:
        raise ForeignEngine(
            f"refusing {engine}: " + "; ".join(problems) + ". Rebuild it with `facerec export "
            "tensorrt` on this machine."
        )


def gpu_environment(tensorrt_version: str, device: int = 0) -> Environment:
    """This machine's GPU ``device`` as TensorRT sees it (``nvidia-smi``, else PyTorch)."""
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            out = subprocess.run(
                [smi, f"--id={device}", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.strip()
            name, cap = (part.strip() for part in out.split(",", 1))
            return Environment(tensorrt_version, name, cap)
        except (subprocess.SubprocessError, ValueError, OSError):
            pass
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device)
            return Environment(
                tensorrt_version, torch.cuda.get_device_name(device), f"{major}.{minor}"
            )
    except ImportError:
        pass
    raise CudaUnavailable("no CUDA GPU found (nvidia-smi and PyTorch see none)")


class CudaUnavailable(Exception):
    """No CUDA device on this machine."""
