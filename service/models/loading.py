"""A model pack → the detector and embedder that run it."""

from __future__ import annotations

import os

from service.inference.embedder import Embedder
from service.inference.onnxruntime_runtime import OnnxRuntime, choose_providers
from service.inference.runtime import Runtime
from service.models.packs import ModelPack
from service.vision.detectors.base import Detector, DetectorConfig

__all__ = ["build_detector", "build_embedder"]


def build_detector(pack: ModelPack, config: DetectorConfig, device: str = "auto") -> Detector:
    spec = pack.manifest.detector
    providers = choose_providers(device)
    if spec.kind == "mtcnn":
        from service.vision.detectors.mtcnn import MTCNN

        files = {name: pack.path(ref) for name, ref in spec.files.items()}
        return MTCNN(config, files, providers)
    from service.vision.detectors.scrfd import SCRFD

    return SCRFD(pack.path(spec.files["model"]), config, providers)


def build_embedder(
    pack: ModelPack,
    device: str = "auto",
    threads: int = 0,
    max_batch: int = 64,
    runtime: str = "onnxruntime",
    engine_cache: str | os.PathLike[str] = "data/engines",
    precision: str = "fp16",
) -> Embedder:
    """The recognizer on ONNX Runtime, or on TensorRT (``runtime="tensorrt"``)."""
    onnx_path = pack.path(pack.manifest.recognizer.file)
    chosen: Runtime
    if runtime == "tensorrt":
        from model_export.tensorrt.engine_key import BatchProfile
        from service.inference.tensorrt_runtime import TensorRTRuntime

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        chosen = TensorRTRuntime(
            onnx_path,
            engine_cache,
            precision,  # type: ignore[arg-type]
            BatchProfile(1, max(1, max_batch // 2), max_batch),
            index,
        )
    else:
        chosen = OnnxRuntime(onnx_path, device, threads=threads, max_batch=max_batch)
    return Embedder(chosen, pack.recognizer_metadata())
