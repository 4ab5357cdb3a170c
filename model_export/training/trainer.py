"""Train (or fine-tune) a backbone with a margin head on an ImageFolder of aligned crops.

The recipe is the paper's (section 3.2): SGD with momentum 0.9 and weight decay 5e-4, learning
rate 0.1 divided by 10 at fixed points of the schedule, the combined margin loss on normalised
features with scale ``s``. One process per device; under torch.distributed each process reads
its own shard (``DistributedSampler``) and DistributedDataParallel averages the gradients of
the backbone and of the (replicated, not partial) margin head.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from model_export.backbones import build_backbone
from model_export.checkpoint import check_fits, read_state_dict
from model_export.losses import ARCFACE, Margin, MarginHead
from model_export.training.checkpoints import load_state, save_backbone, save_state
from model_export.training.data import FaceFolder
from model_export.training.distributed import Rank, all_reduce_mean

__all__ = ["LOG_FILE", "FaceClassifier", "TrainConfig", "default_lr_steps", "train"]

log = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"
# the paper divides the learning rate by 10 at 100K and 160K of 180K iterations
_PAPER_STEP_FRACTIONS = (100 / 180, 160 / 180)


def default_lr_steps(epochs: int) -> tuple[int, ...]:
    """The paper's schedule in epochs: ×0.1 after 100/180 and 160/180 of training."""
    steps = sorted({max(1, round(epochs * f)) for f in _PAPER_STEP_FRACTIONS})
    return tuple(s for s in steps if s < epochs)


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    arch: str = "r50"
    embedding_size: int = 512
    margin: Margin = ARCFACE
    epochs: int = 20
    batch_size: int = 128  # per process
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_steps: tuple[int, ...] | None = None  # epochs after which lr ×0.1; None: the paper's
    max_steps: int | None = None  # stop after this many optimizer steps in all (smoke runs)
    workers: int = 4
    seed: int = 0
    amp: bool = False  # fp16 + GradScaler on CUDA, bfloat16 on the CPU
    device: str = "auto"
    log_every: int = 50
    resume: bool = False
    init_from: Path | None = None  # fine-tune: start the backbone from this backbone.pth
    flip: bool = True

    def schedule(self) -> tuple[int, ...]:
        return self.lr_steps if self.lr_steps is not None else default_lr_steps(self.epochs)


@dataclass
class TrainSummary:
    steps: int = 0
    epochs_done: int = 0
    losses: list[float] = field(default_factory=list)


class FaceClassifier(nn.Module):
    """Backbone + margin head: ``(images, labels)`` → ``(margined logits, cos θ)``."""

    def __init__(self, backbone: nn.Module, head: MarginHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cos_theta = self.head.cosine(self.backbone(images))
        logits: torch.Tensor = self.head.loss(cos_theta, labels)
        return logits, cos_theta.detach()


def _build(config: TrainConfig, num_classes: int) -> FaceClassifier:
    backbone = build_backbone(config.arch, config.embedding_size)
    if config.init_from is not None:
        state = read_state_dict(config.init_from)
        check_fits(backbone, state, config.arch)
        backbone.load_state_dict(state, strict=False)
        log.info("fine-tuning from %s", config.init_from)
    return FaceClassifier(backbone, MarginHead(config.embedding_size, num_classes, config.margin))


def _write_log(out: Path, record: dict[str, Any]) -> None:
    with open(out / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _param_checksum(model: nn.Module) -> float:
    return float(sum(p.detach().double().sum().item() for p in model.parameters()))


def _gather_checksums(model: nn.Module, rank: Rank) -> list[float]:
    value = torch.tensor([_param_checksum(model)], dtype=torch.float64)
    if not rank.distributed:
        return [float(value.item())]
    parts = [torch.zeros_like(value) for _ in range(rank.world_size)]
    dist.all_gather(parts, value)
    return [float(p.item()) for p in parts]


def train(config: TrainConfig, rank: Rank) -> TrainSummary:
    """Run the training loop in this process; rank 0 writes checkpoints and the log."""
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)
    dataset = FaceFolder(config.data, flip=config.flip)
    sampler: DistributedSampler[tuple[torch.Tensor, int]] = DistributedSampler(
        dataset,
        num_replicas=rank.world_size,
        rank=rank.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    if len(sampler) < config.batch_size:
        raise ValueError(
            f"{len(dataset)} images give {len(sampler)} per process, fewer than one batch of "
            f"{config.batch_size}; lower --batch-size"
        )
    on_cuda = rank.device.type == "cuda"
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.workers,
        drop_last=True,
        pin_memory=on_cuda,
        persistent_workers=config.workers > 0,
    )
    model = _build(config, dataset.num_classes).to(rank.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.schedule()), gamma=0.1
    )
    start_epoch, step = 0, 0
    state = load_state(config.out) if config.resume else None
    if state is not None:
        model.backbone.load_state_dict(state["state_dict_backbone"])
        model.head.load_state_dict(state["state_dict_softmax_fc"])
        optimizer.load_state_dict(state["state_optimizer"])
        scheduler.load_state_dict(state["state_lr_scheduler"])
        start_epoch, step = int(state["epoch"]), int(state["global_step"])
        if rank.is_main:
            log.info("resuming at epoch %d, step %d", start_epoch + 1, step)
    elif rank.is_main:
        if config.resume:
            log.warning("--resume: no training state in %s, starting from scratch", config.out)
        (config.out / LOG_FILE).unlink(missing_ok=True)
    net: nn.Module = model
    if rank.distributed:
        net = DistributedDataParallel(model, device_ids=[rank.device] if on_cuda else None)
    amp_dtype = torch.float16 if on_cuda else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and on_cuda)
    if rank.is_main:
        log.info(
            "training %s on %d images of %d identities, %d process(es) on %s, batch %d per "
            "process, margin %s, lr %g ×0.1 after epochs %s",
            config.arch,
            len(dataset),
            dataset.num_classes,
            rank.world_size,
            rank.device,
            config.batch_size,
            model.head.loss.extra_repr(),
            config.lr,
            list(config.schedule()),
        )
    summary = TrainSummary(steps=step, epochs_done=start_epoch)
    stopped = config.max_steps is not None and step >= config.max_steps
    epoch = start_epoch
    while epoch < config.epochs and not stopped:
        sampler.set_epoch(epoch)
        net.train()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=not rank.is_main,
            dynamic_ncols=True,
        )
        for images, labels in bar:
            images = images.to(rank.device, non_blocking=True)
            labels = labels.to(rank.device, non_blocking=True)
            with torch.autocast(rank.device.type, dtype=amp_dtype, enabled=config.amp):
                logits, cos_theta = net(images, labels)
            loss = F.cross_entropy(logits.float(), labels)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.step(optimizer)
            scaler.update()
            step += 1
            accuracy = (cos_theta.argmax(dim=1) == labels).float().mean()
            mean_loss = float(all_reduce_mean(loss.detach(), rank).item())
            mean_acc = float(all_reduce_mean(accuracy, rank).item())
            summary.losses.append(mean_loss)
            last = config.max_steps is not None and step >= config.max_steps
            if rank.is_main:
                lr = optimizer.param_groups[0]["lr"]
                bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{mean_acc:.3f}", lr=f"{lr:g}")
                if step == 1 or step % config.log_every == 0 or last:
                    record = {"epoch": epoch + 1, "step": step, "loss": mean_loss}
                    record |= {"accuracy": mean_acc, "lr": lr, "world_size": rank.world_size}
                    _write_log(config.out, record)
                    log.info(
                        "epoch %d step %d loss %.4f accuracy %.3f lr %g",
                        *(record[k] for k in ("epoch", "step", "loss", "accuracy", "lr")),
                    )
            if last:
                stopped = True
                break
        bar.close()
        if not stopped:
            scheduler.step()
            epoch += 1
        summary.epochs_done, summary.steps = epoch, step
        checksums = _gather_checksums(model, rank)
        if rank.is_main:
            save_backbone(model.backbone, config.out)
            save_state(
                {
                    "epoch": epoch,
                    "global_step": step,
                    "state_dict_backbone": model.backbone.state_dict(),
                    "state_dict_softmax_fc": model.head.state_dict(),
                    "state_optimizer": optimizer.state_dict(),
                    "state_lr_scheduler": scheduler.state_dict(),
                    "arch": config.arch,
                    "num_classes": dataset.num_classes,
                    "margin": asdict(config.margin),
                },
                config.out,
            )
            _write_log(
                config.out,
                {"checkpoint": epoch, "step": step, "param_checksums": checksums},
            )
    return summary
