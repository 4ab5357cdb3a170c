"""Reading and writing the metadata of ONNX files, and running them with ONNX Runtime."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model_export.metadata import RecognizerMetadata
from model_export.parity import FloatArray, Runner

__all__ = ["ort_runner", "read_metadata", "read_props", "write_props"]


def read_props(path: str | os.PathLike[str]) -> dict[str, str]:
    """All ``metadata_props`` of an ONNX file (the weights are not loaded)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def read_metadata(path: str | os.PathLike[str]) -> RecognizerMetadata:
    return RecognizerMetadata.from_props(read_props(path))


def write_props(
    path: str | os.PathLike[str], props: dict[str, str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Set ``props`` in the ONNX file's metadata (others kept), in place or into ``out``."""
    import onnx

    proto = onnx.load(str(path))
    kept = {p.key: p.value for p in proto.metadata_props if p.key not in props}
    del proto.metadata_props[:]
    for key, value in {**kept, **props}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    target = Path(out) if out is not None else Path(path)
    tmp = target.with_name(f".{target.name}.partial")
    onnx.save(proto, str(tmp))
    os.replace(tmp, target)
    return target


def ort_runner(
    path: str | os.PathLike[str], providers: Sequence[str] = ("CPUExecutionProvider",)
) -> Runner:
    """A function running the ONNX file's single input → first output on ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=list(providers))
    input_name = session.get_inputs()[0].name

    def run(batch: FloatArray) -> FloatArray:
        out = session.run(None, {input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)

    return run
