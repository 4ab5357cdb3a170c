"""Load ``arcface_torch`` checkpoints strictly into the registry's backbones."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import nn

from model_export.backbones import build_backbone
from model_export.backbones.iresnet import IRESNET_LAYERS

__all__ = ["CheckpointMismatch", "guess_arch", "load_backbone", "read_state_dict"]

# containers in which arcface_torch (and common trainers) nest the backbone's weights
_NESTED_KEYS = ("state_dict_backbone", "state_dict", "model", "backbone")
_SHOWN = 8  # keys named per category in an error message


class CheckpointMismatch(ValueError):
    """A checkpoint whose keys or shapes do not fit the requested backbone."""

    def __init__(
        self,
        arch: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[str],
        guessed_arch: str | None,
    ) -> None:
        self.arch = arch
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.guessed_arch = guessed_arch
        parts = [f"checkpoint does not fit backbone {arch!r}"]
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                parts.append(f"{len(keys)} {label}: {_summarise(keys)}")
        if guessed_arch and guessed_arch != arch:
            parts.append(f"the checkpoint looks like {guessed_arch!r}: try --arch {guessed_arch}")
        super().__init__("; ".join(parts))


def _summarise(keys: list[str]) -> str:
    """Keys grouped by their block (first two name components), the first few shown."""
    blocks: dict[str, list[str]] = {}
    for key in keys:
        blocks.setdefault(".".join(key.split(".")[:2]), []).append(key)
    shown = [
        group[0] if len(group) == 1 else f"{block}.* ({len(group)})"
        for block, group in list(blocks.items())[:_SHOWN]
    ]
    more = f", … {len(blocks) - _SHOWN} more blocks" if len(blocks) > _SHOWN else ""
    return ", ".join(shown) + more


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a float32 state dict with any ``module.`` prefix removed.

    Accepts a bare state dict (``backbone.pth``) or one nested under a usual key
    (``state_dict_backbone`` in arcface_torch's resumable checkpoints). Only tensors are
    read (``weights_only``): a checkpoint cannot run code.
    """
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    for key in _NESTED_KEYS:
        nested = obj.get(key)
        if isinstance(nested, Mapping):
            obj = nested
            break
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {key!r} is not a tensor")
        name = key[len("module.") :] if key.startswith("module.") else key
        state[name] = value.float() if value.is_floating_point() else value
    if not state:
        raise ValueError(f"{path}: the checkpoint holds no tensors")
    return state


def guess_arch(state: Mapping[str, torch.Tensor]) -> str | None:
    """The registry name whose layout matches the checkpoint's keys, if any."""
    if "layer1.0.conv1.weight" in state:
        counts = []
        for stage in range(1, 5):
            pattern = re.compile(rf"layer{stage}\.(\d+)\.")
            indices = [int(m.group(1)) for k in state if (m := pattern.match(k))]
            counts.append(max(indices) + 1 if indices else 0)
        for name, layers in IRESNET_LAYERS.items():
            if tuple(counts) == layers:
                return name
        return None
    first = state.get("layers.0.layers.0.weight")
    if first is not None:
        return {128: "mbf", 256: "mbf_large"}.get(int(first.shape[0]))
    return None


def embedding_size_of(state: Mapping[str, torch.Tensor]) -> int | None:
    """The embedding size a checkpoint was trained with (its final BatchNorm1d's width)."""
    for key in ("features.weight", "features.layers.3.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], arch: str) -> None:
    """Raise :class:`CheckpointMismatch` unless keys and shapes match exactly.

    BatchNorm's ``num_batches_tracked`` counters are not weights; a checkpoint may lack them.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not _is_counter(k)]
    unexpected = [k for k in state if k not in expected]
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    if missing or unexpected or mismatched:
        raise CheckpointMismatch(arch, missing, unexpected, mismatched, guess_arch(state))


def load_backbone(
    arch: str, path: str | os.PathLike[str], embedding_size: int | None = None
) -> nn.Module:
    """Build ``arch`` and load the checkpoint at ``path`` into it strictly, in eval mode."""
    state = read_state_dict(path)
    size = embedding_size or embedding_size_of(state) or 512
    model = build_backbone(arch, size)
    check_fits(model, state, arch)
    model.load_state_dict(state, strict=False)  # strictness was checked above, counters aside
    return model.eval()
