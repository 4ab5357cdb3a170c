"""What training writes: ``backbone.pth`` for the export stage, ``training_state.pt`` to resume.

``backbone.pth`` is the bare backbone ``state_dict`` (float32, no ``module.`` prefix), the
layout insightface ``arcface_torch`` writes, so ``facerec export onnx --checkpoint`` takes it
as it is. ``training_state.pt`` nests the same weights under ``state_dict_backbone`` (the key
arcface_torch's resumable checkpoints use, which the export stage also reads) next to the
margin head, optimizer and schedule.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from model_export.files import atomic_write_bytes

__all__ = ["BACKBONE_FILE", "STATE_FILE", "load_state", "save_backbone", "save_state"]

BACKBONE_FILE = "backbone.pth"
STATE_FILE = "training_state.pt"


def _save(obj: object, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_backbone(backbone: torch.nn.Module, out: str | os.PathLike[str]) -> Path:
    """Write ``out/backbone.pth`` atomically: the state dict on the CPU in float32."""
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    path = Path(out) / BACKBONE_FILE
    _save(state, path)
    return path


def save_state(state: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    path = Path(out) / STATE_FILE
    _save(state, path)
    return path


def load_state(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The training state in ``out``, or ``None`` when there is none (tensors only loaded)."""
    path = Path(out) / STATE_FILE
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state
