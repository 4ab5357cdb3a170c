"""``facerec export inspect``: what an ONNX recognizer expects, stated in its metadata.

insightface's own loader decides the input normalisation by looking for nodes *named*
``Sub``/``_minus`` and ``Mul``/``_mul`` among the first eight. Here the decision comes from
the graph's structure instead: when the input flows first through a subtraction and a
multiplication (or division) by constants, the graph normalises its own input and the
caller feeds raw pixels (mean 0, std 1); the constants found are reported. Otherwise the
ArcFace recipe applies: ``(x − 127.5) / 127.5``. Either way the result is printed with its
reason and can be overridden before it is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_export.metadata import MetadataError, RecognizerMetadata

__all__ = ["Inspection", "inspect_recognizer"]

Dim = int | str | None


@dataclass(frozen=True)
class Inspection:
    input_name: str
    input_shape: tuple[Dim, ...]
    output_name: str
    output_shape: tuple[Dim, ...]
    existing: RecognizerMetadata | None
    proposed: RecognizerMetadata
    reason: str


def _shape(value_info: Any) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return tuple(dims)


def _constant(graph: Any, name: str) -> float | None:
    """The scalar (or uniform) value of an initializer or Constant node output, if it is one."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            arr = numpy_helper.to_array(init)
            return float(arr.flat[0]) if arr.size and np.all(arr == arr.flat[0]) else None
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    arr = numpy_helper.to_array(attr.t)
                    if arr.size and np.all(arr == arr.flat[0]):
                        return float(arr.flat[0])
    return None


def _input_normalisation(graph: Any, input_name: str) -> tuple[float, float] | None:
    """``(mean, scale)`` when the input passes through ``Sub`` then ``Mul``/``Div`` by constants."""
    consumers = [n for n in graph.node if input_name in n.input]
    if len(consumers) != 1 or consumers[0].op_type != "Sub":
        return None
    sub = consumers[0]
    mean = _constant(graph, sub.input[1])
    following = [n for n in graph.node if sub.output[0] in n.input]
    if mean is None or len(following) != 1 or following[0].op_type not in ("Mul", "Div"):
        return None
    op = following[0]
    other = op.input[1] if op.input[0] == sub.output[0] else op.input[0]
    factor = _constant(graph, other)
    if factor is None or factor == 0:
        return None
    scale = factor if op.op_type == "Mul" else 1.0 / factor
    return mean, scale


def inspect_recognizer(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    mean: float | None = None,
    std: float | None = None,
    color_order: str | None = None,
) -> Inspection:
    """Read an ONNX recognizer's interface and propose its metadata."""
    import onnx

    proto = onnx.load(str(path))
    graph = proto.graph
    initialisers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initialisers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(
            f"{path}: a recognizer has one input and one output; found {len(inputs)} and "
            f"{len(graph.output)}"
        )
    inp, out = inputs[0], graph.output[0]
    in_shape, out_shape = _shape(inp), _shape(out)
    if len(in_shape) != 4 or in_shape[1] != 3:
        raise ValueError(f"{path}: input {inp.name} is {in_shape}, not (N, 3, H, W)")
    if len(out_shape) != 2 or not isinstance(out_shape[1], int):
        raise ValueError(f"{path}: output {out.name} is {out_shape}, not (N, embedding_size)")
    height, width = in_shape[2], in_shape[3]
    if not isinstance(height, int) or not isinstance(width, int):
        raise ValueError(f"{path}: input height and width must be fixed, found {in_shape}")

    props = {p.key: p.value for p in proto.metadata_props}
    try:
        existing: RecognizerMetadata | None = RecognizerMetadata.from_props(props)
    except MetadataError:
        existing = None

    in_graph = _input_normalisation(graph, inp.name)
    if in_graph is not None:
        found_mean, scale = in_graph
        reason = (
            f"the graph normalises its own input ((x - {found_mean:g}) * {scale:g}): "
            "feed raw pixels, mean 0, std 1"
        )
        guess_mean, guess_std = 0.0, 1.0
    else:
        reason = "no normalisation in the graph: the ArcFace recipe, (x - 127.5) / 127.5"
        guess_mean, guess_std = 127.5, 127.5
    if mean is not None or std is not None:
        reason = "given on the command line"
    base = existing or RecognizerMetadata(arch="unknown", embedding_size=out_shape[1])
    proposed = RecognizerMetadata(
        arch=arch or base.arch,
        embedding_size=out_shape[1],
        input_mean=mean if mean is not None else (base.input_mean if existing else guess_mean),
        input_std=std if std is not None else (base.input_std if existing else guess_std),
        color_order=(color_order or base.color_order),  # type: ignore[arg-type]
        input_width=width,
        input_height=height,
        input_name=inp.name,
        output_name=out.name,
        checkpoint_sha256=base.checkpoint_sha256,
        random_init=base.random_init,
        seed=base.seed,
        source=base.source if existing else "onnx (inspected)",
    )
    if existing is not None and mean is None and std is None:
        reason = "read from the file's facerec metadata"
    return Inspection(inp.name, in_shape, out.name, out_shape, existing, proposed, reason)
