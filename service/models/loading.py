"""A model pack → the detector and embedder that run it."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Literal

from service.errors import ModelPackError
from service.inference.embedder import Embedder
from service.inference.onnxruntime_runtime import OnnxRuntime, choose_providers
from service.inference.runtime import Runtime
from service.models.packs import ModelPack
from service.vision.detectors.base import DEFAULT_THRESHOLDS, Detector, DetectorConfig

__all__ = ["build_detector", "build_embedder", "detector_threshold"]

Landmarks = Literal["detector", "onet"]


def detector_threshold(pack: ModelPack, config: DetectorConfig) -> float:
    """The score threshold a pack's detector runs at: the one asked for (settings), else the
    pack manifest's default, else the detector's own (:data:`DEFAULT_THRESHOLDS`)."""
    if config.threshold is not None:
        return float(config.threshold)
    spec = pack.manifest.detector
    return spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLDS[spec.kind]


def build_detector(
    pack: ModelPack,
    config: DetectorConfig,
    device: str = "auto",
    landmarks: Landmarks | None = None,
    *,
    threads: int = 0,
    spinning: bool = False,
) -> Detector:
    """The pack's detector. ``config.threshold`` unset: :func:`detector_threshold`.
    ``landmarks`` (unset: the manifest's choice) ``"onet"`` replaces the landmarks of a YuNet
    or SCRFD detector by MTCNN's O-Net's on its boxes (MTCNN's are O-Net's already).
    ``threads`` and ``spinning``: ONNX Runtime's CPU threads of YuNet and O-Net (see
    :func:`~service.inference.onnxruntime_runtime.session_options`)."""
    spec = pack.manifest.detector
    providers = choose_providers(device)
    config = replace(config, threshold=detector_threshold(pack, config))
    if spec.kind == "mtcnn":
        from service.vision.detectors.mtcnn import MTCNN

        files = {name: pack.path(ref) for name, ref in spec.files.items()}
        return MTCNN(config, files, providers)
    detector: Detector
    if spec.kind == "yunet":
        from service.vision.detectors.yunet import YuNet

        detector = YuNet(
            pack.path(spec.files["model"]), config, providers, threads=threads, spinning=spinning
        )
    else:
        from service.vision.detectors.scrfd import SCRFD

        detector = SCRFD(pack.path(spec.files["model"]), config, providers)
    if (landmarks or spec.landmarks) == "detector":
        return detector
    from service.vision.detectors.mtcnn import mtcnn_model_files
    from service.vision.detectors.refine import ONetLandmarks, RefinedDetector

    try:
        onet = pack.path(spec.files["onet"]) if "onet" in spec.files else None
        refiner = ONetLandmarks(
            onet or mtcnn_model_files()["onet"], providers, threads=threads, spinning=spinning
        )
        return RefinedDetector(detector, refiner)
    except ModelPackError as exc:
        raise ModelPackError(f"landmarks from O-Net: {exc.message}") from exc


def build_embedder(
    pack: ModelPack,
    device: str = "auto",
    threads: int = 0,
    max_batch: int = 64,
    runtime: str = "onnxruntime",
    engine_cache: str | os.PathLike[str] = "data/engines",
    precision: str = "fp16",
    torch_checkpoint: str | os.PathLike[str] | None = None,
    cuda_graphs: bool = True,
    lanes: int = 1,
    compile_model: bool = False,
    spinning: bool = False,
) -> Embedder:
    """The recognizer on ONNX Runtime, TensorRT (``"tensorrt"``), PyTorch (``"torch"``) or
    OpenVINO (``"openvino"``, CPU)."""
    onnx_path = pack.path(pack.manifest.recognizer.file)
    meta = pack.recognizer_metadata()
    chosen: Runtime
    if runtime == "torch":
        from model_export.onnx_io import read_metadata
        from service.inference.torch_runtime import TorchRuntime, model_for

        exported = read_metadata(onnx_path)  # the seed or checkpoint hash it was built from
        model = model_for(
            exported.arch,
            exported.embedding_size,
            checkpoint=None if torch_checkpoint is None else str(torch_checkpoint),
            seed=exported.seed if exported.random_init else None,
            expected_sha256=exported.checkpoint_sha256,
        )
        chosen = TorchRuntime(
            model,
            "cuda:0" if device == "auto" else device,
            "fp32" if precision == "int8" else precision,
            max_batch,
            input_mean=meta.input_mean,
            input_std=meta.input_std,
            bgr=meta.color_order == "BGR",
            input_size=(meta.input_width, meta.input_height),
            cuda_graphs=cuda_graphs,
            lanes=max(1, lanes),
            compile_model=compile_model,
        )
    elif runtime == "openvino":
        from service.inference.openvino_runtime import OpenVINORuntime

        chosen = OpenVINORuntime(
            onnx_path, "cpu" if device == "auto" else device, threads, max_batch, precision
        )
    elif runtime == "tensorrt":
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
        chosen = OnnxRuntime(
            onnx_path, device, threads=threads, max_batch=max_batch, spinning=spinning
        )
    return Embedder(chosen, meta)
