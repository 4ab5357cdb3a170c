"""``facerec train run`` on CUDA: a few fp16 (autocast + GradScaler) steps, then export check.

Skipped with a reason where CUDA is absent (tests/gpu/conftest.py). With two or more GPUs the
same run goes through DistributedDataParallel over NCCL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import cli
from tests.helpers import make_face_folder

pytestmark = pytest.mark.gpu


def _run(tmp_path: Path, *extra: str) -> Path:
    data = make_face_folder(tmp_path / "faces", classes=4, per_class=8)
    out = tmp_path / "out"
    args = ["train", "run", str(data), "--out", str(out), "--arch", "r18", "--workers", "2"]
    args += ["--batch-size", "8", "--max-steps", "4", "--log-every", "1", "--amp", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


def _losses(out: Path) -> list[float]:
    lines = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


def test_fp16_training_on_cuda_exports_and_checks(tmp_path: Path) -> None:
    out = _run(tmp_path, "--device", "cuda")
    losses = _losses(out)
    assert len(losses) == 4 and all(loss == loss and loss > 0 for loss in losses)
    onnx_path, checkpoint = out / "r18.onnx", str(out / "backbone.pth")
    runner = CliRunner()
    exported = runner.invoke(
        cli,
        ["export", "onnx", "--arch", "r18", "--checkpoint", checkpoint, "--out", str(onnx_path)],
    )
    assert exported.exit_code == 0, exported.output
    checked = runner.invoke(cli, ["export", "check", str(onnx_path), "--checkpoint", checkpoint])
    assert checked.exit_code == 0, checked.output


def test_ddp_over_nccl_when_two_gpus_are_present(tmp_path: Path) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs 2 GPUs for NCCL, found {torch.cuda.device_count()}")
    out = _run(tmp_path, "--device", "cuda", "--nproc", "2")
    records = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    (final,) = [r for r in records if "param_checksums" in r]
    assert final["param_checksums"][0] == pytest.approx(final["param_checksums"][1], abs=1e-4)
