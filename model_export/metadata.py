"""The preprocessing contract an ONNX recognizer carries in its own metadata.

The export stage writes it; the service reads it (through ONNX Runtime's
``custom_metadata_map``), so nobody guesses mean, std or colour order from node names.
Pure Python: no ONNX or PyTorch import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["PREFIX", "MetadataError", "RecognizerMetadata"]

PREFIX = "facerec."
ColorOrder = Literal["RGB", "BGR"]


class MetadataError(ValueError):
    """Metadata absent or not readable as a recognizer's preprocessing contract."""


@dataclass(frozen=True)
class RecognizerMetadata:
    """What a recognizer expects and what it is.

    ``input_mean``/``input_std`` apply per pixel, ``(x - mean) / std``, to ``color_order``
    channels laid out NCHW at ``input_size`` (width, height).
    """

    arch: str
    embedding_size: int
    input_mean: float = 127.5
    input_std: float = 127.5
    color_order: ColorOrder = "RGB"
    input_width: int = 112
    input_height: int = 112
    layout: Literal["NCHW"] = "NCHW"
    input_name: str = "input"
    output_name: str = "embedding"
    checkpoint_sha256: str = ""
    random_init: bool = False
    seed: int | None = None
    source: str = "arcface_torch"

    def to_props(self) -> dict[str, str]:
        """``metadata_props`` entries: every value as a string under the ``facerec.`` prefix."""
        props: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            props[PREFIX + f.name] = text
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> RecognizerMetadata:
        """Read the contract back; raises :class:`MetadataError` naming what is wrong."""
        own = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not own:
            raise MetadataError(
                "the model carries no facerec metadata; run `facerec export inspect MODEL "
                "--write` to state its preprocessing"
            )
        values: dict[str, object] = {}
        try:
            for f in fields(cls):
                if f.name not in own:
                    continue
                raw = own[f.name]
                if f.name in {"embedding_size", "input_width", "input_height", "seed"}:
                    values[f.name] = int(raw)
                elif f.name in {"input_mean", "input_std"}:
                    values[f.name] = float(raw)
                elif f.name == "random_init":
                    if raw not in {"true", "false"}:
                        raise ValueError(f"random_init must be true or false, got {raw!r}")
                    values[f.name] = raw == "true"
                else:
                    values[f.name] = raw
            meta = cls(**values)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"invalid facerec metadata: {exc}") from exc
        if meta.color_order not in ("RGB", "BGR"):
            raise MetadataError(f"color_order must be RGB or BGR, got {meta.color_order!r}")
        if meta.input_std == 0:
            raise MetadataError("input_std must not be 0")
        return meta
