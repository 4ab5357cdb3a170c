"""Loading arcface_torch checkpoints strictly, with the mismatches named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model_export.backbones import build_backbone
from model_export.checkpoint import CheckpointMismatch, guess_arch, load_backbone, read_state_dict


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def r18() -> torch.nn.Module:
    torch.manual_seed(3)
    model = build_backbone("r18")
    for m in model.modules():  # non-trivial statistics, so a wrong load would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _embed(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.inference_mode():
        out: torch.Tensor = model(torch.randn(2, 3, 112, 112))
    return out


def test_plain_state_dict_loads_and_reproduces_outputs(
    r18: torch.nn.Module, tmp_path: Path
) -> None:
    path = _save(r18.state_dict(), tmp_path / "backbone.pth")
    loaded = load_backbone("r18", path)
    assert torch.equal(_embed(loaded), _embed(r18))


def test_module_prefix_and_fp16_are_accepted(r18: torch.nn.Module, tmp_path: Path) -> None:
    # what torch.nn.parallel.DistributedDataParallel(...).state_dict() saved under amp looks like
    state = {
        f"module.{k}": (v.half() if v.is_floating_point() else v)
        for k, v in r18.state_dict().items()
    }
    loaded = load_backbone("r18", _save(state, tmp_path / "ddp_fp16.pth"))
    ref = _embed(r18)
    assert torch.nn.functional.cosine_similarity(_embed(loaded), ref).min() > 0.999
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_resumable_checkpoint_nesting_is_accepted(r18: torch.nn.Module, tmp_path: Path) -> None:
    # arcface_torch's checkpoint_gpu_N.pt keeps the backbone under "state_dict_backbone"
    nested = {"epoch": 3, "global_step": 10, "state_dict_backbone": r18.state_dict()}
    torch.save(nested, tmp_path / "checkpoint_gpu_0.pt")
    state = read_state_dict(tmp_path / "checkpoint_gpu_0.pt")
    assert "layer1.0.conv1.weight" in state


def test_missing_batchnorm_counters_are_not_an_error(r18: torch.nn.Module, tmp_path: Path) -> None:
    state = {k: v for k, v in r18.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_backbone("r18", _save(state, tmp_path / "old.pth"))


def test_checkpoint_of_another_arch_names_the_mismatch(
    r18: torch.nn.Module, tmp_path: Path
) -> None:
    path = _save(r18.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointMismatch) as err:
        load_backbone("r34", path)
    message = str(err.value)
    assert "missing keys" in message
    assert "layer2.2.* (" in message  # r34 has 4 units in stage 2, r18 only 2
    assert "layer2.2.bn1.weight" in err.value.missing
    assert "try --arch r18" in message
    assert err.value.guessed_arch == "r18"
    assert not err.value.unexpected


def test_mobilefacenet_checkpoint_into_iresnet_lists_unexpected_keys(tmp_path: Path) -> None:
    path = _save(build_backbone("mbf").state_dict(), tmp_path / "mbf.pth")
    with pytest.raises(CheckpointMismatch, match=r"unexpected keys: layers\.0\.\* \("):
        load_backbone("r18", path)


def test_embedding_size_mismatch_is_a_shape_mismatch(r18: torch.nn.Module, tmp_path: Path) -> None:
    path = _save(r18.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(CheckpointMismatch, match=r"shape mismatches: fc.bias \(512,\) vs \(256,\)"):
        load_backbone("r18", path, embedding_size=256)


def test_embedding_size_is_read_from_the_checkpoint(tmp_path: Path) -> None:
    path = _save(build_backbone("mbf", embedding_size=256).state_dict(), tmp_path / "mbf256.pth")
    model = load_backbone("mbf", path)
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 112, 112)).shape == (1, 256)


def test_non_tensor_entries_are_refused(tmp_path: Path) -> None:
    torch.save({"conv1.weight": [1, 2, 3]}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a tensor"):
        read_state_dict(tmp_path / "bad.pth")


@pytest.mark.parametrize("arch", ["r18", "r34", "r50", "r100", "r200", "mbf", "mbf_large"])
def test_guess_arch_recognises_each_layout(arch: str) -> None:
    # shapes only matter for mbf; meta tensors keep r200 cheap
    with torch.device("meta"):
        state = build_backbone(arch).state_dict()
    assert guess_arch(state) == arch
