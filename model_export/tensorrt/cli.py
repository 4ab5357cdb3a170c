"""``facerec export tensorrt`` and ``facerec export quantize`` (placeholder, being written)."""

from __future__ import annotations

import click


@click.command("tensorrt")
def tensorrt_command() -> None:
    """Build a TensorRT engine from an ONNX recognizer."""
    raise click.ClickException("not implemented yet")


@click.command("quantize")
def quantize_command() -> None:
    """Insert INT8 Q/DQ nodes calibrated on aligned crops."""
    raise click.ClickException("not implemented yet")
