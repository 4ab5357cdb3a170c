"""PyTorch → ONNX: dynamic batch, named I/O, metadata, and ``facerec export check``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from onnx import numpy_helper

from model_export.backbones import build_backbone
from model_export.files import sha256_file
from model_export.onnx_io import read_metadata
from service.cli import cli


@pytest.fixture(scope="module")
def mbf_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "mbf.onnx"
    result = CliRunner().invoke(
        cli, ["export", "onnx", "--arch", "mbf", "--random-init", "--seed", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "UNTRAINED (seed 5)" in result.output
    return out


def test_named_io_and_dynamic_batch(mbf_onnx: Path) -> None:
    session = ort.InferenceSession(str(mbf_onnx), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "embedding")
    assert inp.shape == ["batch", 3, 112, 112]
    assert out.shape == ["batch", 512]
    for n in (1, 3, 8):
        result = session.run(None, {"input": np.zeros((n, 3, 112, 112), np.float32)})[0]
        assert result.shape == (n, 512)


def test_metadata_states_the_preprocessing_and_the_untrained_origin(mbf_onnx: Path) -> None:
    meta = read_metadata(mbf_onnx)
    assert (meta.input_mean, meta.input_std, meta.color_order) == (127.5, 127.5, "RGB")
    assert (meta.input_width, meta.input_height, meta.embedding_size) == (112, 112, 512)
    assert (meta.arch, meta.random_init, meta.seed) == ("mbf", True, 5)
    assert meta.checkpoint_sha256 == ""


def test_check_passes_on_a_faithful_export(mbf_onnx: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "check", str(mbf_onnx), "--batch-sizes", "1,4"])
    assert result.exit_code == 0, result.output
    assert "OK: min cosine" in result.output
    assert "4x512" in result.output


def test_check_fails_when_the_onnx_weights_differ(mbf_onnx: Path, tmp_path: Path) -> None:
    proto = onnx.load(str(mbf_onnx))
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.ndim == 4 and arr.shape[0] == 128:  # the first convolution: perturb it
            noisy = arr + np.random.default_rng(0).normal(0, 1.0, arr.shape).astype(arr.dtype)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
            break
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    result = CliRunner().invoke(cli, ["export", "check", str(tampered), "--batch-sizes", "2"])
    assert result.exit_code == 1
    assert "FAIL: min cosine" in result.output


def test_checkpoint_export_records_its_hash_and_check_needs_it(tmp_path: Path) -> None:
    torch.manual_seed(1)
    ckpt = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in build_backbone("mbf").state_dict().items()}, ckpt)
    out = tmp_path / "mbf.onnx"
    runner = CliRunner()
    args = ["export", "onnx", "--arch", "mbf", "--checkpoint", str(ckpt), "--out", str(out)]
    assert runner.invoke(cli, args).exit_code == 0
    meta = read_metadata(out)
    assert meta.checkpoint_sha256 == sha256_file(ckpt)
    assert not meta.random_init

    without = runner.invoke(cli, ["export", "check", str(out)])
    assert without.exit_code == 1 and "--checkpoint" in without.output
    other = tmp_path / "other.pth"
    torch.save(build_backbone("mbf").state_dict(), other)
    wrong = runner.invoke(cli, ["export", "check", str(out), "--checkpoint", str(other)])
    assert wrong.exit_code == 1 and "is not the checkpoint" in wrong.output
    right = runner.invoke(
        cli, ["export", "check", str(out), "--checkpoint", str(ckpt), "--batch-sizes", "1,2"]
    )
    assert right.exit_code == 0, right.output


def test_wrong_arch_checkpoint_fails_with_one_clear_line(tmp_path: Path) -> None:
    ckpt = tmp_path / "r18.pth"
    torch.save(build_backbone("r18").state_dict(), ckpt)
    args = [
        "export",
        "onnx",
        "--arch",
        "r34",
        "--checkpoint",
        str(ckpt),
        "--out",
        str(tmp_path / "x"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "does not fit backbone 'r34'" in result.output
    assert "try --arch r18" in result.output
    assert not (tmp_path / "x").exists()


def test_checkpoint_and_random_init_are_exclusive(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export", "onnx", "--arch", "mbf", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "exactly one of --checkpoint" in result.output


@pytest.mark.slow
def test_r100_random_init_export_passes_check_at_batch_1_and_32(tmp_path: Path) -> None:
    """The issue's acceptance run: r100, random init, min cosine ≥ 0.9999, output (N, 512)."""
    out = tmp_path / "r100.onnx"
    runner = CliRunner()
    args = ["export", "onnx", "--arch", "r100", "--random-init", "--seed", "0", "--out", str(out)]
    assert runner.invoke(cli, args).exit_code == 0
    result = runner.invoke(cli, ["export", "check", str(out), "--batch-sizes", "1,32"])
    assert result.exit_code == 0, result.output
    assert "1x512" in result.output and "32x512" in result.output
