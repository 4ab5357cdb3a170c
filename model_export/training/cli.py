"""``facerec train …``: training and the toy experiment. PyTorch is imported inside commands."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from model_export.cli import ARCHS

if TYPE_CHECKING:
    from model_export.training.distributed import Rank
    from model_export.training.trainer import TrainConfig

log = logging.getLogger("model_export.training")

MARGIN_NAMES = ("arcface", "cosface", "sphereface", "norm-softmax")


def _epochs_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        steps = tuple(sorted(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated epochs, got {value!r}") from None
    if any(s < 1 for s in steps):
        raise click.BadParameter("epochs are counted from 1")
    return steps


@click.group("train")
def train_group() -> None:
    """Train or fine-tune a backbone with the ArcFace margin loss; the toy experiment."""


@train_group.command("run")
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="folder for backbone.pth, training_state.pt and train_log.jsonl",
)
@click.option("--arch", type=click.Choice(ARCHS), default="r50", show_default=True)
@click.option("--embedding-size", type=int, default=512, show_default=True)
@click.option(
    "--margin",
    "margin_name",
    type=click.Choice(MARGIN_NAMES),
    default="arcface",
    show_default=True,
    help="(m1, m2, m3): arcface (1, 0.5, 0), cosface (1, 0, 0.35), "
    "sphereface (1.35, 0, 0), norm-softmax (1, 0, 0)",
)
@click.option("--s", "scale", type=float, default=64.0, show_default=True, help="feature scale")
@click.option("--m1", type=float, default=None, help="override the setting's m1")
@click.option("--m2", type=float, default=None, help="override the setting's m2")
@click.option("--m3", type=float, default=None, help="override the setting's m3")
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True, help="per process")
@click.option("--lr", type=float, default=0.1, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--weight-decay", type=float, default=5e-4, show_default=True)
@click.option(
    "--lr-steps",
    default=None,
    callback=_epochs_list,
    help="epochs after which lr ×0.1 (default: 100/180 and 160/180 of --epochs)",
)
@click.option("--max-steps", type=int, default=None, help="stop after this many steps in all")
@click.option("--workers", type=int, default=4, show_default=True, help="loader processes")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--amp", is_flag=True, help="mixed precision: fp16 on CUDA, bfloat16 on the CPU")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N")
@click.option(
    "--nproc",
    type=int,
    default=1,
    show_default=True,
    help="processes to spawn here (DDP: NCCL on GPUs, gloo on the CPU); under "
    "torchrun leave it at 1",
)
@click.option("--log-every", type=int, default=50, show_default=True)
@click.option("--resume", is_flag=True, help="continue from OUT/training_state.pt")
@click.option(
    "--init-from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="fine-tune: start the backbone from this backbone.pth",
)
def run_command(
    data: Path,
    out: Path,
    arch: str,
    embedding_size: int,
    margin_name: str,
    scale: float,
    m1: float | None,
    m2: float | None,
    m3: float | None,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    lr_steps: tuple[int, ...] | None,
    max_steps: int | None,
    workers: int,
    seed: int,
    amp: bool,
    device: str,
    nproc: int,
    log_every: int,
    resume: bool,
    init_from: Path | None,
) -> None:
    """Train on DATA/<identity>/<aligned 112×112 crop>; writes OUT/backbone.pth for export."""
    from model_export.losses import MARGINS, Margin
    from model_export.training.distributed import from_env, spawn
    from model_export.training.trainer import TrainConfig

    base = MARGINS[margin_name]
    try:
        margin = Margin(
            base.m1 if m1 is None else m1,
            base.m2 if m2 is None else m2,
            base.m3 if m3 is None else m3,
            scale,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    config = TrainConfig(
        data=data,
        out=out,
        arch=arch,
        embedding_size=embedding_size,
        margin=margin,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        lr_steps=lr_steps,
        max_steps=max_steps,
        workers=workers,
        seed=seed,
        amp=amp,
        device=device,
        log_every=log_every,
        resume=resume,
        init_from=init_from,
    )
    try:
        if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
            if nproc != 1:
                raise click.UsageError("under torchrun, leave --nproc at 1")
            import torch.distributed as dist

            rank = from_env(device)
            try:
                _run_rank(config, rank)
            finally:
                if rank.distributed:
                    dist.destroy_process_group()
            if not rank.is_main:
                return
        else:
            spawn(partial(_run_rank, config), nproc, device)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{out / 'backbone.pth'}: export with "
        f"facerec export onnx --arch {arch} --checkpoint {out / 'backbone.pth'} --out model.onnx"
    )


def _run_rank(config: TrainConfig, rank: Rank) -> None:
    """One process of a training run (module level, so that spawned processes can run it)."""
    from model_export.training.trainer import train

    if not logging.getLogger().handlers:  # a spawned process starts without the CLI's logging
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    summary = train(config, rank)
    if rank.is_main and summary.losses:
        log.info(
            "done: %d steps, %d epochs, loss %.4f → %.4f",
            summary.steps,
            summary.epochs_done,
            summary.losses[0],
            summary.losses[-1],
        )


@train_group.command("toy")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/figures"),
    show_default=True,
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=int, default=None, help="default: the experiment's")
def toy_command(out: Path, seed: int, epochs: int | None) -> None:
    """The paper's Figure 3 in small: digits 0-7, 2-D features, Norm-Softmax vs ArcFace."""
    from model_export.training.toy import ToyConfig, run_toy

    config = ToyConfig(seed=seed) if epochs is None else ToyConfig(seed=seed, epochs=epochs)
    result = run_toy(config, out)
    for name, r in result.items():
        click.echo(
            f"{name:>13}: angular gap {r['angular_gap_deg']:+.1f}°, held-out accuracy "
            f"{r['test_accuracy']:.3f}, loss {r['loss_start']:.3f} → {r['loss_end']:.3f}"
        )
    click.echo(f"wrote {out / 'toy_margins.png'} and {out / 'toy_margins.json'}")
