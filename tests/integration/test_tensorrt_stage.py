"""The export stage around TensorRT, on a machine without it: Q/DQ insertion, engine cache
reuse and refusal, and the command line's errors.

TensorRT cannot be installed on our machines, so where a test needs "TensorRT present" it
replaces the three TensorRT-only calls (version, GPU query, build) with stand-ins and says so;
everything around them is the real code. tests/gpu/test_tensorrt_build.py runs the real build.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from model_export.onnx_export import export_onnx, recognizer_from
from model_export.onnx_io import read_metadata, read_props
from model_export.tensorrt import build as trt_build
from model_export.tensorrt import engines
from model_export.tensorrt.engine_key import (
    BatchProfile,
    CudaUnavailable,
    EngineKey,
    Environment,
    read_key,
    write_key,
)
from model_export.tensorrt.quantize import QUANTIZATION_KEY, agreement, calibration_crops
from service.cli import cli


@pytest.fixture(scope="module")
def r18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, meta = recognizer_from("r18", seed=0)
    return export_onnx(model, meta, tmp_path_factory.mktemp("trt") / "r18.onnx")


@pytest.fixture(scope="module")
def crops_dir(tmp_path_factory: pytest.TempPathFactory, insightface_images: Path) -> Path:
    """Augmented copies of insightface's aligned sample crop."""
    folder = tmp_path_factory.mktemp("crops")
    face = cv2.imread(str(insightface_images / "Tom_Hanks_54745.png"))
    rng = np.random.default_rng(0)
    for i in range(24):
        m = cv2.getRotationMatrix2D((56, 56), rng.uniform(-10, 10), rng.uniform(0.9, 1.1))
        m[:, 2] += rng.uniform(-4, 4, 2)
        crop = cv2.warpAffine(face, m, (112, 112), borderMode=cv2.BORDER_REFLECT)
        crop = np.clip(crop * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20), 0, 255)
        cv2.imwrite(str(folder / f"{i:03d}.png"), crop.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def r18_int8(r18: Path, crops_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("q") / "r18.int8.onnx"
    args = ["export", "quantize", str(r18), "--calib-dir", str(crops_dir), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "min cosine" in result.output
    return out


def test_qdq_nodes_are_symmetric_int8(r18_int8: Path) -> None:
    proto = onnx.load(str(r18_int8))
    kinds = [n.op_type for n in proto.graph.node]
    assert kinds.count("QuantizeLinear") > 10 and kinds.count("DequantizeLinear") > 10
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero_point = inits[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    producers = {o: n.op_type for n in proto.graph.node for o in n.output}
    assert all(producers.get(c.input[0]) == "DequantizeLinear" for c in convs)


def test_qdq_model_keeps_metadata_and_stays_close_to_fp32(
    r18: Path, r18_int8: Path, crops_dir: Path
) -> None:
    assert read_metadata(r18_int8) == read_metadata(r18)
    assert "int8-qdq" in read_props(r18_int8)[QUANTIZATION_KEY]
    low, mean = agreement(r18, r18_int8, calibration_crops(crops_dir, read_metadata(r18)))
    # Untrained r18 on its own calibration crops: measured min 0.993, mean 0.996 here. A
    # broken quantization (wrong scales, asymmetric zero points) drops far below 0.9.
    assert low > 0.95 and mean > 0.98, (low, mean)


def test_quantize_refuses_an_empty_calibration_folder(r18: Path, tmp_path: Path) -> None:
    args = [
        "export",
        "quantize",
        str(r18),
        "--calib-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "q.onnx"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "no readable images" in result.output


def _no_tensorrt() -> object:
    raise trt_build.TensorRTUnavailable("TensorRT is not installed (test)")


def test_missing_tensorrt_exits_2_with_one_line(r18: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trt_build, "import_tensorrt", _no_tensorrt)
    result = CliRunner().invoke(cli, ["export", "tensorrt", str(r18), "--precision", "fp16"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "TensorRT is not installed" in lines[0]


def test_missing_cuda_exits_2_with_one_line(
    r18: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stand-in: "TensorRT imports" (it cannot here); the GPU query is real code made to fail
    monkeypatch.setattr(trt_build, "tensorrt_version", lambda: "10.3.0")
    monkeypatch.setattr(engines, "tensorrt_version", lambda: "10.3.0")

    def no_gpu(version: str, device: int = 0) -> Environment:
        raise CudaUnavailable("no CUDA GPU found (test)")

    monkeypatch.setattr(engines, "gpu_environment", no_gpu)
    args = ["export", "tensorrt", str(r18), "--cache-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert [ln for ln in result.output.splitlines() if ln.strip()] == [
        "Error: no CUDA GPU found (test)"
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--min-batch", "8", "--opt-batch", "4"], 2, "min <= opt <= max"),
        (["--calib-dir", "/nonexistent-crops"], 2, "no such folder"),
    ],
)
def test_bad_options_are_one_line_errors(
    r18: Path, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(cli, ["export", "tensorrt", str(r18), *args])
    assert result.exit_code == code
    assert message in result.output


def test_missing_model_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "tensorrt", str(tmp_path / "none.onnx")])
    assert result.exit_code == 1 and "no such ONNX file" in result.output


H100 = Environment("10.3.0", "NVIDIA H100 80GB HBM3", "9.0")


@pytest.fixture
def fake_tensorrt(monkeypatch: pytest.MonkeyPatch) -> list[EngineKey]:
    """Stand-ins for the TensorRT-only calls; records each build."""
    builds: list[EngineKey] = []

    def build(source: Path, key: EngineKey, out: Path, **_: object) -> Path:
        out.write_bytes(b"engine for " + key.digest().encode())
        write_key(out, key)
        builds.append(key)
        return out

    monkeypatch.setattr(engines, "tensorrt_version", lambda: H100.tensorrt_version)
    monkeypatch.setattr(engines, "gpu_environment", lambda v, d=0: H100)
    monkeypatch.setattr(engines, "build_engine", build)
    return builds


def test_engine_cache_builds_once_then_reuses(
    r18: Path, tmp_path: Path, fake_tensorrt: list[EngineKey]
) -> None:
    profile = BatchProfile(1, 32, 128)
    first, key, _ = engines.ensure_engine(r18, "fp16", profile, tmp_path)
    again, key2, _ = engines.ensure_engine(r18, "fp16", profile, tmp_path)
    assert first == again and key == key2 and len(fake_tensorrt) == 1
    assert read_key(first).environment == H100
    other, _, _ = engines.ensure_engine(r18, "fp32", profile, tmp_path)
    assert other != first and len(fake_tensorrt) == 2


def test_a_foreign_engine_in_the_cache_is_rebuilt_not_loaded(
    r18: Path, tmp_path: Path, fake_tensorrt: list[EngineKey]
) -> None:
    profile = BatchProfile(1, 32, 128)
    path, key, _ = engines.ensure_engine(r18, "fp16", profile, tmp_path)
    # the cache volume moved to a host with another GPU: its key says A100
    write_key(
        path, EngineKey(key.onnx_sha256, "fp16", profile, Environment("10.3.0", "A100", "8.0"))
    )
    engines.ensure_engine(r18, "fp16", profile, tmp_path)
    assert len(fake_tensorrt) == 2 and read_key(path).environment == H100


def test_int8_of_a_float_model_needs_calibration_crops(
    r18: Path, tmp_path: Path, fake_tensorrt: list[EngineKey]
) -> None:
    with pytest.raises(ValueError, match="--calib-dir"):
        engines.ensure_engine(r18, "int8", BatchProfile(), tmp_path)


def test_int8_builds_from_a_quantized_model(
    r18: Path, r18_int8: Path, crops_dir: Path, tmp_path: Path, fake_tensorrt: list[EngineKey]
) -> None:
    _, key, source = engines.ensure_engine(
        r18, "int8", BatchProfile(), tmp_path, calib_dir=crops_dir
    )
    assert source.name.endswith(".int8-qdq.onnx") and key.precision == "int8"
    with pytest.raises(ValueError, match="--precision int8"):
        engines.ensure_engine(r18_int8, "fp16", BatchProfile(), tmp_path)
