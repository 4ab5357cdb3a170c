"""``facerec train run`` on a tiny generated data set: log, checkpoint, export, resume, DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from model_export.checkpoint import load_backbone, read_state_dict
from model_export.training.checkpoints import BACKBONE_FILE, STATE_FILE
from model_export.training.trainer import LOG_FILE, default_lr_steps
from service.cli import cli
from tests.helpers import make_face_folder

ARCH = "mbf"  # the smallest registered backbone: a few CPU steps take seconds


def _records(out: Path) -> list[dict[str, Any]]:
    lines = (out / LOG_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _train(data: Path, out: Path, *extra: str) -> str:
    args = ["train", "run", str(data), "--out", str(out), "--arch", ARCH, "--workers", "0"]
    args += ["--batch-size", "4", "--log-every", "1", "--device", "cpu", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_face_folder(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _train(data, out, "--max-steps", "3", "--lr", "0.01")
    return out


def test_training_logs_finite_loss_and_accuracy_per_step(trained: Path) -> None:
    steps = [r for r in _records(trained) if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for r in steps:
        assert np.isfinite(r["loss"]) and r["loss"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["lr"] == pytest.approx(0.01)
        assert r["world_size"] == 1


def test_checkpoint_is_a_bare_backbone_state_dict_that_loads_strictly(trained: Path) -> None:
    state = torch.load(trained / BACKBONE_FILE, map_location="cpu", weights_only=True)
    assert not any(k.startswith(("module.", "backbone.", "head.")) for k in state)
    assert all(v.dtype != torch.float16 for v in state.values())
    model = load_backbone(ARCH, trained / BACKBONE_FILE)  # strict: raises on any mismatch
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 112, 112)).shape == (2, 512)
    # the resumable state nests the same weights where arcface_torch puts them
    nested = read_state_dict(trained / STATE_FILE)
    assert nested.keys() == read_state_dict(trained / BACKBONE_FILE).keys()


def test_trained_checkpoint_exports_and_passes_export_check(trained: Path) -> None:
    onnx_path = trained / "model.onnx"
    checkpoint = str(trained / BACKBONE_FILE)
    runner = CliRunner()
    exported = runner.invoke(
        cli,
        ["export", "onnx", "--arch", ARCH, "--checkpoint", checkpoint, "--out", str(onnx_path)],
    )
    assert exported.exit_code == 0, exported.output
    assert "UNTRAINED" not in exported.output
    checked = runner.invoke(
        cli, ["export", "check", str(onnx_path), "--checkpoint", checkpoint, "--batch-sizes", "1,4"]
    )
    assert checked.exit_code == 0, checked.output
    assert "OK: min cosine" in checked.output


def test_resume_continues_the_step_count(data: Path, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    before = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    _train(data, out, "--resume", "--max-steps", "5", "--lr", "0.01")
    after = torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)
    assert (before["global_step"], after["global_step"]) == (3, 5)
    steps = [r["step"] for r in _records(out) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5]  # the log was appended to, not restarted
    assert after["state_optimizer"]["state"], "momentum buffers were saved"


def test_fine_tuning_starts_from_a_backbone_and_refuses_another_arch(
    data: Path, trained: Path, tmp_path: Path
) -> None:
    start = read_state_dict(trained / BACKBONE_FILE)
    out = tmp_path / "tuned"
    _train(data, out, "--init-from", str(trained / BACKBONE_FILE), "--max-steps", "1", "--lr", "0")
    tuned = read_state_dict(out / BACKBONE_FILE)
    # lr 0: the weights are the starting checkpoint's (BatchNorm statistics moved, nothing else)
    for key, value in start.items():
        if "running_" not in key and "num_batches" not in key:
            torch.testing.assert_close(tuned[key], value, msg=key)
    refused = CliRunner().invoke(
        cli,
        [
            "train",
            "run",
            str(data),
            "--out",
            str(tmp_path / "r18"),
            "--arch",
            "r18",
            "--workers",
            "0",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--init-from",
            str(trained / BACKBONE_FILE),
        ],
    )
    assert refused.exit_code != 0
    assert "does not fit backbone 'r18'" in refused.output and "try --arch mbf" in refused.output


def test_lr_steps_default_to_the_papers_fractions() -> None:
    assert default_lr_steps(20) == (11, 18)
    assert default_lr_steps(18) == (10, 16)
    assert default_lr_steps(1) == ()


@pytest.mark.slow  # two spawned processes each import PyTorch: ~15 s alone, more on a busy CPU
def test_two_gloo_ranks_train_in_step(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    _train(data, out, "--nproc", "2", "--max-steps", "2", "--batch-size", "2")
    steps = [r for r in _records(out) if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["world_size"] == 2 for r in steps)
    (final,) = [r for r in _records(out) if "param_checksums" in r]
    # DDP averaged the gradients: both ranks hold the same weights after the steps
    first, second = final["param_checksums"]
    assert first == pytest.approx(second, rel=0, abs=1e-6)
    load_backbone(ARCH, out / BACKBONE_FILE)


def test_a_batch_larger_than_the_shard_is_refused(data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "run",
            str(data),
            "--out",
            str(tmp_path),
            "--arch",
            ARCH,
            "--workers",
            "0",
            "--batch-size",
            "64",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code != 0
    assert "lower --batch-size" in result.output


def test_the_cli_does_not_import_torch_until_a_train_command_runs() -> None:
    code = "import sys, service.cli; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
