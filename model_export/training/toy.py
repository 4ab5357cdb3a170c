"""The paper's Figure 3 in small: 2-D features of 8 classes, Norm-Softmax against ArcFace.

The paper trains 2-D embeddings of 8 identities and shows that Norm-Softmax separates the
classes with no room between the nearest ones while ArcFace leaves a clear angular gap. Here
the 8 classes are digits 0–7 of scikit-learn's bundled 8×8 digits (no download), the network
a small MLP with a 2-D output, trained twice from the same seed and split, once per loss. The
measured numbers (see :mod:`model_export.training.angular` for the gap's definition) go to a
JSON file next to the figure.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from model_export.losses import ARCFACE, NORM_SOFTMAX, Margin, MarginHead
from model_export.training.angular import ClassArc, angular_gap, class_arcs

__all__ = ["ToyConfig", "load_digits_split", "run_toy", "train_toy"]

FIGURE = "toy_margins.png"
NUMBERS = "toy_margins.json"


@dataclass(frozen=True)
class ToyConfig:
    seed: int = 0
    classes: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    test_fraction: float = 0.3
    hidden: int = 128
    epochs: int = 200
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    s: float = 16.0
    arcface_m: float = 0.5
    gap_quantile: float = 0.0  # 0: the extents cover every training sample

    def margins(self) -> dict[str, Margin]:
        return {
            "norm-softmax": NORM_SOFTMAX.with_scale(self.s),
            "arcface": Margin(ARCFACE.m1, self.arcface_m, ARCFACE.m3, self.s),
        }


Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def load_digits_split(config: ToyConfig) -> Split:
    """Stratified train/held-out split of the chosen digit classes, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    keep = np.isin(digits.target, config.classes)
    x = digits.data[keep].astype(np.float32) / 16.0
    y = np.searchsorted(np.asarray(config.classes), digits.target[keep])
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=config.test_fraction, stratify=y, random_state=config.seed
    )
    return (
        torch.from_numpy(x_tr),
        torch.from_numpy(y_tr).long(),
        torch.from_numpy(x_te),
        torch.from_numpy(y_te).long(),
    )


def _embedder(config: ToyConfig, inputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, config.hidden),
        nn.BatchNorm1d(config.hidden),
        nn.PReLU(config.hidden),
        nn.Linear(config.hidden, config.hidden),
        nn.BatchNorm1d(config.hidden),
        nn.PReLU(config.hidden),
        nn.Linear(config.hidden, 2),
    )


def _recalibrate_batchnorm(embedder: nn.Module, x: torch.Tensor) -> None:
    """Set BatchNorm's running statistics to the whole training set's ("precise BN").

    The exponential averages left by SGD lag behind the last weights; features evaluated with
    them would not be the ones the loss shaped, and the figure should show those.
    """
    norms = [m for m in embedder.modules() if isinstance(m, nn.BatchNorm1d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one pass gives the exact statistics
    embedder.train()
    with torch.no_grad():
        embedder(x)


@dataclass
class ToyRun:
    margin: Margin
    losses: list[float]
    train_features: npt.NDArray[np.float64]
    test_features: npt.NDArray[np.float64]
    centres: npt.NDArray[np.float64]  # the head's class centres, (classes, 2)
    test_accuracy: float
    train_accuracy: float


def train_toy(config: ToyConfig, margin: Margin, split: Split) -> ToyRun:
    """Train embedder + margin head with SGD from ``config.seed``; features of both splits."""
    x_tr, y_tr, x_te, y_te = split
    torch.manual_seed(config.seed)
    embedder = _embedder(config, x_tr.shape[1])
    head = MarginHead(2, len(config.classes), margin)
    params = [*embedder.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    steps = [round(config.epochs * f) for f in (100 / 180, 160 / 180)]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, steps, gamma=0.1)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for _ in range(config.epochs):
        embedder.train()
        order = torch.randperm(len(x_tr), generator=generator)
        total, count = 0.0, 0
        for batch in torch.split(order, config.batch_size):
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            logits = head(embedder(x_tr[batch]), y_tr[batch])
            loss = F.cross_entropy(logits, y_tr[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total, count = total + loss.item() * len(batch), count + len(batch)
        scheduler.step()
        losses.append(total / count)
    _recalibrate_batchnorm(embedder, x_tr)
    embedder.eval()
    with torch.no_grad():
        f_tr, f_te = embedder(x_tr), embedder(x_te)
        acc_tr = (head.cosine(f_tr).argmax(1) == y_tr).float().mean().item()
        acc_te = (head.cosine(f_te).argmax(1) == y_te).float().mean().item()
        centres = F.normalize(head.weight).numpy().astype(np.float64)
    return ToyRun(
        margin,
        losses,
        f_tr.numpy().astype(np.float64),
        f_te.numpy().astype(np.float64),
        centres,
        acc_te,
        acc_tr,
    )


def _summary(run: ToyRun, y_tr: npt.NDArray[np.int64], config: ToyConfig) -> dict[str, Any]:
    gap, pair = angular_gap(run.train_features, y_tr, config.gap_quantile)
    arcs = class_arcs(run.train_features, y_tr, config.gap_quantile)
    return {
        "margin": asdict(run.margin),
        "angular_gap_deg": math.degrees(gap),
        "nearest_pair": [config.classes[pair[0]], config.classes[pair[1]]],
        "max_extent_deg": max(math.degrees(a.hi - a.lo) for a in arcs),
        "train_accuracy": run.train_accuracy,
        "test_accuracy": run.test_accuracy,
        "loss_start": run.losses[0],
        "loss_end": run.losses[-1],
    }


def _draw(
    ax: Any,
    run: ToyRun,
    y: npt.NDArray[np.int64],
    arcs: list[ClassArc],
    names: tuple[int, ...],
    title: str,
) -> None:
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    unit = run.train_features / np.linalg.norm(run.train_features, axis=1, keepdims=True)
    # spread the points radially by sample index so that a dense arc stays readable
    radius = 0.75 + 0.25 * (np.arange(len(unit)) % 50) / 50
    for arc in arcs:
        mine = y == arc.label
        colour = colours(arc.label)
        ax.scatter(*(unit[mine] * radius[mine, None]).T, s=3, color=colour, alpha=0.6)
        t = np.linspace(arc.centre + arc.lo, arc.centre + arc.hi, 50)
        ax.plot(1.08 * np.cos(t), 1.08 * np.sin(t), color=colour, lw=3)
        ax.text(
            1.2 * np.cos(arc.centre),
            1.2 * np.sin(arc.centre),
            str(names[arc.label]),
            color=colour,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
        )
        c = run.centres[arc.label]
        ax.plot([0, 1.2 * c[0]], [0, 1.2 * c[1]], color=colour, lw=0.8, ls="--")
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(circle), np.sin(circle), color="0.8", lw=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.axis("off")


def run_toy(config: ToyConfig, out: str | Path) -> dict[str, dict[str, Any]]:
    """Train both losses, write the figure and the numbers, return the numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and the sums reproducible
    try:
        return _run(config, out, plt)
    finally:
        torch.set_num_threads(threads)


def _run(config: ToyConfig, out: Path, plt: Any) -> dict[str, dict[str, Any]]:
    split = load_digits_split(config)
    y_tr = split[1].numpy()
    results: dict[str, dict[str, Any]] = {}
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.8))
    for ax, (name, margin) in zip(axes, config.margins().items(), strict=True):
        run = train_toy(config, margin, split)
        results[name] = _summary(run, y_tr, config)
        r = results[name]
        arcs = class_arcs(run.train_features, y_tr, config.gap_quantile)
        label = "Norm-Softmax" if name == "norm-softmax" else f"ArcFace (m = {margin.m2:g})"
        _draw(
            ax,
            run,
            y_tr,
            arcs,
            config.classes,
            f"{label}, s = {margin.s:g}\nsmallest gap between neighbours "
            f"{r['angular_gap_deg']:+.1f}°, held-out accuracy {r['test_accuracy']:.3f}",
        )
    fig.suptitle(
        "2-D features of digits 0–7 (training set, L2-normalised, radius jittered for legibility); "
        "arcs: class extents; dashed: class centres",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out / FIGURE, dpi=110)
    plt.close(fig)
    numbers = {
        "config": asdict(config),
        "gap_definition": "min over adjacent classes of the angle between their extents "
        "(quantiles gap_quantile..1-gap_quantile of deviations from the circular-mean centre, "
        "training features); negative = overlap",
        "results": results,
        # the same seed gives other last digits on another PyTorch or BLAS: say which made it
        "environment": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    (out / NUMBERS).write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    return results
