"""PyTorch backbone → ONNX with a dynamic batch axis and the preprocessing in its metadata."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from model_export.backbones import build_backbone
from model_export.checkpoint import load_backbone
from model_export.files import sha256_file
from model_export.metadata import RecognizerMetadata

__all__ = ["DEFAULT_OPSET", "export_onnx", "random_backbone", "recognizer_from"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18
_CALIBRATION_BATCHES = 2
_CALIBRATION_BATCH_SIZE = 8


def random_backbone(arch: str, seed: int, embedding_size: int = 512) -> nn.Module:
    """An untrained backbone, reproducible from ``(arch, seed, embedding_size)``.

    After the usual random initialisation, BatchNorm running statistics are set from a few
    forward passes over seeded random images in [-1, 1] (a data-dependent init). Without it
    a deep IResNet's activations grow by orders of magnitude through its residual stages and
    every input maps to nearly the same direction; with it, embeddings of different inputs
    are close to orthogonal, as a trained model's are for different people. The model means
    nothing about faces: it exists for tests and benchmarks.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_backbone(arch, embedding_size)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(_CALIBRATION_BATCHES):
            images = torch.rand(_CALIBRATION_BATCH_SIZE, 3, 112, 112, generator=generator) * 2 - 1
            model(images)
    for bn in norms:
        bn.momentum = 0.1
    return model.eval()


def recognizer_from(
    arch: str,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    embedding_size: int | None = None,
) -> tuple[nn.Module, RecognizerMetadata]:
    """The backbone and its metadata, from a checkpoint or (``checkpoint=None``) a seed."""
    if checkpoint is not None:
        log.info("loading checkpoint %s as %s", checkpoint, arch)
        model = load_backbone(arch, checkpoint, embedding_size)
        digest = sha256_file(checkpoint)
        size = int(getattr(model, "embedding_size", embedding_size or 512))
        return model, RecognizerMetadata(arch=arch, embedding_size=size, checkpoint_sha256=digest)
    if seed is None:
        raise ValueError("either a checkpoint or a seed (for a random-initialised model) is needed")
    size = embedding_size or 512
    log.warning("building an UNTRAINED %s (seed %d): its embeddings mean nothing", arch, seed)
    model = random_backbone(arch, seed, size)
    meta = RecognizerMetadata(arch=arch, embedding_size=size, random_init=True, seed=seed)
    return model, meta


def export_onnx(
    model: nn.Module,
    meta: RecognizerMetadata,
    out: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``model`` as ONNX at ``out``: input ``(batch, 3, H, W)``, output ``(batch, E)``.

    The batch axis is dynamic; ``meta`` is stored in ``metadata_props`` and the graph is
    checked by ``onnx.checker`` before the file is moved into place.
    """
    import onnx

    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    example = torch.zeros(2, 3, meta.input_height, meta.input_width)
    batch = torch.export.Dim("batch", min=1, max=65536)
    log.info("tracing %s to ONNX (opset %d)", meta.arch, opset)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(tmp),
            input_names=[meta.input_name],
            output_names=[meta.output_name],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = onnx.load(str(tmp))
    _name_batch_axis(proto)
    del proto.metadata_props[:]
    for key, value in meta.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "facerec model_export"
    log.info("checking the ONNX graph")
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    os.replace(tmp, target)
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's per-pass INFO chatter (hundreds of lines for r100) off the log."""
    names = ("onnx_ir", "onnxscript", "torch.onnx")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _name_batch_axis(proto: object) -> None:
    """Call the dynamic first axis of every graph input and output ``batch``."""
    graph = proto.graph  # type: ignore[attr-defined]
    for value in [*graph.input, *graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = "batch"
