"""ONNX Runtime behind the runtime interface: CPU, or CUDA where the provider exists."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from service.errors import ModelPackError
from service.inference.runtime import FloatArray

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(device: str) -> list[str]:
    """Providers for ``device``: ``cpu``, ``cuda`` / ``cuda:N``, or ``auto`` (CUDA if present)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device.startswith("cuda"):
        if CUDA not in available:
            raise ModelPackError(
                f"device {device!r} asked for, but ONNX Runtime has no CUDA provider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use device cpu"
            )
        return [CUDA, CPU]
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")


ProviderSpec = str | tuple[str, dict[str, str]]


def session_options(threads: int = 0, spinning: bool = False) -> object:
    """ONNX Runtime session options as the service sets them: every graph optimisation,
    ``threads`` intra-op threads (0: ONNX Runtime's choice, one per core), and whether those
    threads spin while waiting for work (ONNX Runtime's own default is to spin). Spinning can
    shave a little latency off a session that has the cores to itself; the service runs
    several (YuNet, O-Net, the recognizer, in different threads), whose spinning threads
    take the cores the others need, so it is off unless ``FACEREC_ORT_SPINNING`` is set."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


def varying_shape_providers(providers: Sequence[str]) -> list[ProviderSpec]:
    """``providers`` set up for a model whose input shapes change from call to call.

    ONNX Runtime's CUDA provider searches cuDNN's convolution algorithms exhaustively for
    every new input shape by default. A detector sees a new shape on almost every call (image
    pyramid levels, candidate counts), so it would search on every call, taking about a
    second each; the heuristic choice costs nothing.
    """
    return [(p, {"cudnn_conv_algo_search": "HEURISTIC"}) if p == CUDA else p for p in providers]


class OnnxRuntime:
    """One ``InferenceSession`` over a single-input model."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        device: str = "auto",
        threads: int = 0,
        max_batch: int = 64,
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        providers = choose_providers(device)
        options = session_options(threads, spinning)
        provider_options: list[dict[str, str]] = []
        for p in providers:
            if p == CUDA and ":" in device:
                provider_options.append({"device_id": device.split(":", 1)[1]})
            else:
                provider_options.append({})
        source = model if isinstance(model, bytes) else str(model)
        try:
            self._session = ort.InferenceSession(
                source, options, providers=providers, provider_options=provider_options
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelPackError(f"ONNX Runtime could not load the model: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelPackError(f"expected a model with one input, found {len(inputs)}")
        self._input = inputs[0].name
        self.input_shape: Sequence[int | str | None] = inputs[0].shape
        batch_dim = self.input_shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) else max_batch
        active = self._session.get_providers()
        self.device = (
            "cuda:" + device.split(":", 1)[1]
            if CUDA in active and ":" in device
            else ("cuda:0" if CUDA in active else "cpu")
        )
        # INT8 where `facerec export quantize` wrote the file (its Q/DQ nodes run in INT8)
        props = self._session.get_modelmeta().custom_metadata_map
        self.precision = "int8" if "facerec.quantization" in props else "fp32"
        log.info("ONNX Runtime session on %s (providers %s)", self.device, ", ".join(active))

    def run(self, batch: FloatArray) -> FloatArray:
        out = self._session.run(None, {self._input: batch})[0]
        return np.asarray(out, dtype=np.float32)
