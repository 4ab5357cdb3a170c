"""``facerec export inspect`` on recognizers shaped like insightface's, without our metadata."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper, numpy_helper

from model_export.onnx_export import export_onnx, recognizer_from
from model_export.onnx_io import ort_runner, read_metadata
from model_export.parity import preprocess
from service.cli import cli


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like insightface's ``w600k_r50.onnx``: input ``input.1``, no facerec metadata."""
    folder = tmp_path_factory.mktemp("inspect")
    model, meta = recognizer_from("mbf", seed=2)
    path = export_onnx(model, meta, folder / "exported.onnx")
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for node in proto.graph.node:
        node.input[:] = ["input.1" if i == "input" else i for i in node.input]
    proto.graph.input[0].name = "input.1"
    out = folder / "w600k_like.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.fixture(scope="module")
def self_normalising_onnx(plain_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like insightface's mxnet-converted models: ``(x - 127.5) * 0.0078125`` inside the graph."""
    proto = onnx.load(str(plain_onnx))
    graph = proto.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(127.5, np.float32), "norm_mean"),
            numpy_helper.from_array(np.array(0.0078125, np.float32), "norm_scale"),
        ]
    )
    for node in graph.node:
        node.input[:] = ["normalised" if i == "data" else i for i in node.input]
        node.input[:] = ["data_scaled" if i == "input.1" else i for i in node.input]
    # named as mxnet names them, which is what insightface's loader looks for
    mul = helper.make_node("Mul", ["data_centred", "norm_scale"], ["data_scaled"], "_mulscalar0")
    sub = helper.make_node("Sub", ["data", "norm_mean"], ["data_centred"], "_minusscalar0")
    graph.node.insert(0, mul)
    graph.node.insert(0, sub)
    graph.input[0].name = "data"
    out = tmp_path_factory.mktemp("inspect") / "mxnet_like.onnx"
    onnx.save(proto, str(out))
    return out


def test_inspect_reports_and_writes_the_arcface_recipe(plain_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "with_meta.onnx"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["export", "inspect", str(plain_onnx), "--arch", "r50", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "input   input.1 ['batch', 3, 112, 112]" in result.output
    assert "(x - 127.5) / 127.5" in result.output
    assert "metadata  absent" in result.output
    meta = read_metadata(out)
    assert (meta.input_name, meta.output_name, meta.arch) == ("input.1", "embedding", "r50")
    assert meta.source == "onnx (inspected)"
    again = runner.invoke(cli, ["export", "inspect", str(out)])
    assert "metadata  present" in again.output and "read from the file" in again.output


def test_graph_normalisation_is_found_by_structure(self_normalising_onnx: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "inspect", str(self_normalising_onnx), "--write"])
    assert result.exit_code == 0, result.output
    assert "normalises its own input ((x - 127.5) * 0.0078125)" in result.output
    meta = read_metadata(self_normalising_onnx)
    assert (meta.input_mean, meta.input_std, meta.input_name) == (0.0, 1.0, "data")


def test_written_preprocessing_matches_insightface_arcfaceonnx(
    self_normalising_onnx: Path, plain_onnx: Path, insightface_images: Path, tmp_path: Path
) -> None:
    """Both files fed as their metadata says give insightface's own embedding."""
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    bgr = cv2.imread(str(insightface_images / "Tom_Hanks_54745.png"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]
    written = tmp_path / "plain.onnx"
    CliRunner().invoke(cli, ["export", "inspect", str(plain_onnx), "--out", str(written)])
    CliRunner().invoke(cli, ["export", "inspect", str(self_normalising_onnx), "--write"])
    for path in (written, self_normalising_onnx):
        meta = read_metadata(path)
        ours = ort_runner(path)(preprocess(rgb, meta))[0]
        theirs = ArcFaceONNX(model_file=str(path)).get_feat(bgr)[0]
        cos = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
        assert cos > 0.9999, (path.name, cos)


def test_structure_not_names_decides(self_normalising_onnx: Path, tmp_path: Path) -> None:
    """Renamed normalisation nodes fool a name-based guess, not the structural one."""
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    proto = onnx.load(str(self_normalising_onnx))
    del proto.metadata_props[:]
    for node in proto.graph.node[:2]:
        node.name = f"preprocess_{node.op_type.lower()}"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(proto, str(renamed))
    result = CliRunner().invoke(cli, ["export", "inspect", str(renamed), "--write"])
    assert "normalises its own input" in result.output
    assert read_metadata(renamed).input_mean == 0.0
    assert ArcFaceONNX(model_file=str(renamed)).input_mean == 127.5  # the name-based guess


def test_not_a_recognizer_is_refused(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 640, 640])],
    )
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph), str(path))
    result = CliRunner().invoke(cli, ["export", "inspect", str(path)])
    assert result.exit_code == 1
    assert "not (N, embedding_size)" in result.output
