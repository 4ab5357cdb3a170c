"""``facerec export tensorrt`` and ``facerec export quantize``."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from model_export.tensorrt.engine_key import PRECISIONS

log = logging.getLogger("model_export")

# Parity thresholds against ONNX Runtime FP32 (the design card's); INT8 is reported only.
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.0}


class Unavailable(click.ClickException):
    """TensorRT or CUDA missing: exit code 2 and one line."""

    exit_code = 2


@click.command("tensorrt")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp16", show_default=True)
@click.option(
    "--calib-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="aligned crops to calibrate INT8 on (for a float model)",
)
@click.option("--min-batch", type=int, default=1, show_default=True)
@click.option("--opt-batch", type=int, default=64, show_default=True)
@click.option("--max-batch", type=int, default=256, show_default=True)
@click.option("--workspace-gb", type=float, default=4.0, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/engines"),
    show_default=True,
    help="engines, timing cache and quantized models",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--device", type=int, default=0, show_default=True, help="CUDA device index")
@click.option("--check/--no-check", default=True, help="compare with ONNX Runtime after building")
def tensorrt_command(
    model: Path,
    precision: str,
    calib_dir: Path | None,
    min_batch: int,
    opt_batch: int,
    max_batch: int,
    workspace_gb: float,
    cache_dir: Path,
    out: Path | None,
    device: int,
    check: bool,
) -> None:
    """Build a TensorRT engine for MODEL, keyed by GPU, TensorRT, ONNX, precision and profile."""
    from model_export.tensorrt.build import TensorRTUnavailable, tensorrt_version
    from model_export.tensorrt.engine_key import BatchProfile, CudaUnavailable

    if not model.is_file():
        raise click.ClickException(f"{model}: no such ONNX file")
    try:
        profile = BatchProfile(min_batch, opt_batch, max_batch)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if calib_dir is not None and not calib_dir.is_dir():
        raise click.UsageError(f"--calib-dir {calib_dir}: no such folder")
    try:
        tensorrt_version()
    except TensorRTUnavailable as exc:
        raise Unavailable(str(exc)) from None

    from model_export.tensorrt.engines import ensure_engine

    try:
        engine, key, _source = ensure_engine(
            model,
            precision,  # type: ignore[arg-type]
            profile,
            cache_dir,
            calib_dir=calib_dir,
            device=device,
            workspace_gb=workspace_gb,
            out=out,
        )
    except (TensorRTUnavailable, CudaUnavailable) as exc:
        raise Unavailable(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{engine}: {key.precision}, batch {key.profile}, {key.environment}")
    if check:
        _report_parity(model, engine, key)


def _report_parity(model: Path, engine: Path, key: object) -> None:
    from model_export.onnx_io import ort_runner, read_metadata
    from model_export.parity import compare
    from model_export.tensorrt.build import TensorRTEngine
    from model_export.tensorrt.engine_key import EngineKey

    assert isinstance(key, EngineKey)
    meta = read_metadata(model)
    trt_engine = TensorRTEngine(engine, key)
    sizes = sorted({key.profile.min, min(key.profile.opt, 32)})
    results = compare(ort_runner(model), trt_engine.run, meta, sizes)
    floor = MIN_COSINE[key.precision]
    click.echo(f"{'batch':>5}  {'max |diff|':>11}  {'min cosine':>10}   vs ONNX Runtime FP32")
    for r in results:
        click.echo(f"{r.batch_size:>5}  {r.max_abs_diff:>11.3e}  {r.min_cosine:>10.7f}")
    worst = min(r.min_cosine for r in results)
    if worst < floor:
        click.echo(f"FAIL: min cosine {worst:.7f} < {floor} for {key.precision}", err=True)
        raise SystemExit(1)


@click.command("quantize")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--calib-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="aligned face crops (jpg/png), searched recursively",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--max-images", type=int, default=512, show_default=True)
@click.option(
    "--method", type=click.Choice(["minmax", "entropy"]), default="minmax", show_default=True
)
@click.option(
    "--check/--no-check",
    default=True,
    help="report cosine against the float model on the calibration crops",
)
def quantize_command(
    model: Path, calib_dir: Path, out: Path, max_images: int, method: str, check: bool
) -> None:
    """Insert INT8 Q/DQ nodes into MODEL, calibrated on aligned crops (for TensorRT INT8)."""
    from model_export.metadata import MetadataError
    from model_export.tensorrt.quantize import quantize_qdq

    try:
        quantize_qdq(model, calib_dir, out, max_images=max_images, method=method)
    except (MetadataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out}")
    if check:
        from model_export.onnx_io import read_metadata
        from model_export.tensorrt.quantize import agreement, calibration_crops

        crops = calibration_crops(calib_dir, read_metadata(model), min(max_images, 64))
        low, mean = agreement(model, out, crops)
        click.echo(
            f"INT8 Q/DQ vs FP32 (ONNX Runtime CPU, {len(crops)} calibration crops): "
            f"min cosine {low:.5f}, mean {mean:.5f}"
        )
