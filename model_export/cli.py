"""``facerec export …``: the export stage's commands. Heavy imports happen inside commands."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from model_export.tensorrt.cli import quantize_command, tensorrt_command

log = logging.getLogger("model_export")

ARCHS = ("r18", "r34", "r50", "r100", "r200", "mbf", "mbf_large")
DEFAULT_MIN_COSINE = 0.9999


def _batch_sizes(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("batch sizes must be positive")
    return sizes


@click.group("export")
def export_group() -> None:
    """Export ArcFace backbones: PyTorch → ONNX → TensorRT, each step checked."""


@export_group.command("onnx")
@click.option("--arch", type=click.Choice(ARCHS), required=True, help="backbone name")
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="arcface_torch backbone.pth",
)
@click.option("--random-init", is_flag=True, help="build an UNTRAINED model (tests, benchmarks)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --random-init")
@click.option("--embedding-size", type=int, default=None, help="default: from the checkpoint")
@click.option("--opset", type=int, default=None, help="ONNX opset (default 18)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def export_onnx_command(
    arch: str,
    checkpoint: Path | None,
    random_init: bool,
    seed: int,
    embedding_size: int | None,
    opset: int | None,
    out: Path,
) -> None:
    """Export a backbone to ONNX with a dynamic batch axis and its preprocessing metadata."""
    if (checkpoint is None) == (not random_init):
        raise click.UsageError("give exactly one of --checkpoint PATH or --random-init")
    from model_export.checkpoint import CheckpointMismatch
    from model_export.onnx_export import DEFAULT_OPSET, export_onnx, recognizer_from

    log.info("step 1/2: building %s", arch)
    try:
        model, meta = recognizer_from(
            arch,
            checkpoint=checkpoint,
            seed=None if checkpoint else seed,
            embedding_size=embedding_size,
        )
    except (CheckpointMismatch, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    log.info("step 2/2: exporting to %s", out)
    export_onnx(model, meta, out, opset or DEFAULT_OPSET)
    click.echo(
        f"{out}: {meta.arch}, embedding {meta.embedding_size}, input "
        f"{meta.input_name} (N,3,{meta.input_height},{meta.input_width}) {meta.color_order} "
        f"(x-{meta.input_mean:g})/{meta.input_std:g}"
        + (f", UNTRAINED (seed {meta.seed})" if meta.random_init else "")
    )


@export_group.command("check")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the checkpoint MODEL was exported from (not needed for --random-init exports)",
)
@click.option(
    "--batch-sizes", default="1,32", show_default=True, callback=_batch_sizes, expose_value=True
)
@click.option("--min-cosine", type=float, default=DEFAULT_MIN_COSINE, show_default=True)
def export_check_command(
    model: Path, checkpoint: Path | None, batch_sizes: tuple[int, ...], min_cosine: float
) -> None:
    """PyTorch vs ONNX Runtime on the same inputs; exit 1 below --min-cosine."""
    from model_export.check import check_onnx
    from model_export.metadata import MetadataError

    try:
        results = check_onnx(model, checkpoint, batch_sizes)
    except (MetadataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'batch':>5}  {'output':>12}  {'max |diff|':>11}  {'min cosine':>10}")
    for r in results:
        shape = "x".join(str(d) for d in r.output_shape)
        click.echo(
            f"{r.batch_size:>5}  {shape:>12}  {r.max_abs_diff:>11.3e}  {r.min_cosine:>10.7f}"
        )
    worst = min(r.min_cosine for r in results)
    if worst < min_cosine:
        click.echo(f"FAIL: min cosine {worst:.7f} < {min_cosine}", err=True)
        raise SystemExit(1)
    click.echo(f"OK: min cosine {worst:.7f} >= {min_cosine}")


@export_group.command("inspect")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--write", is_flag=True, help="write the metadata into MODEL (or --out)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--arch", default=None, help="architecture name to record, e.g. r100")
@click.option("--mean", type=float, default=None, help="override the input mean")
@click.option("--std", type=float, default=None, help="override the input std")
@click.option("--color-order", type=click.Choice(["RGB", "BGR"], case_sensitive=False))
def export_inspect_command(
    model: Path,
    write: bool,
    out: Path | None,
    arch: str | None,
    mean: float | None,
    std: float | None,
    color_order: str | None,
) -> None:
    """Show an ONNX recognizer's input, output and preprocessing; optionally record it."""
    from model_export.inspect import inspect_recognizer
    from model_export.onnx_io import write_props

    try:
        found = inspect_recognizer(
            model,
            arch=arch,
            mean=mean,
            std=std,
            color_order=color_order.upper() if color_order else None,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    meta = found.proposed
    click.echo(f"input   {found.input_name} {list(found.input_shape)}")
    click.echo(f"output  {found.output_name} {list(found.output_shape)}")
    click.echo(
        f"preprocessing  {meta.color_order}, (x - {meta.input_mean:g}) / {meta.input_std:g}, "
        f"{meta.input_width}x{meta.input_height}, NCHW  [{found.reason}]"
    )
    click.echo(f"metadata  {'present' if found.existing else 'absent'}")
    if write or out is not None:
        target = write_props(model, meta.to_props(), out)
        click.echo(f"wrote facerec metadata to {target}")
    elif found.existing is None:
        click.echo("run again with --write to record this preprocessing in the file")


export_group.add_command(tensorrt_command)
export_group.add_command(quantize_command)
