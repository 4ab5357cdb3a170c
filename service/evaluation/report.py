"""Verification and identification reports: numbers, a JSON file, a ROC plot."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.evaluation.metrics import cmc, eer, kfold_accuracy, roc, tar_at_far

FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def verification_report(
    scores: npt.NDArray[np.floating], same: Sequence[bool], missed: int
) -> dict[str, Any]:
    folds = kfold_accuracy(scores, same)
    tars = tar_at_far(scores, same, FARS, decimals=6)  # thresholds as one would set them
    return {
        "pairs": len(same),
        "genuine": int(np.sum(same)),
        "impostor": int(len(same) - np.sum(same)),
        "images_without_face": missed,
        "accuracy": round(folds.mean, 5),
        "accuracy_std": round(folds.std, 5),
        "fold_thresholds": [round(t, 5) for t in folds.thresholds],
        "eer": round(eer(scores, same), 5),
        "tar_at_far": {
            f"{far:g}": {"tar": round(t, 5), "threshold": th} for far, (t, th) in tars.items()
        },
    }


def identification_report(
    similarity: npt.NDArray[np.floating],
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
) -> dict[str, Any]:
    curve = cmc(similarity, probe_labels, gallery_labels, max_rank=min(20, len(gallery_labels)))
    return {
        "probes": len(probe_labels),
        "gallery": len(gallery_labels),
        "rank1": round(float(curve[0]), 5),
        "rank5": round(float(curve[min(4, len(curve) - 1)]), 5),
        "cmc": [round(float(v), 5) for v in curve],
    }


def plot_roc(
    scores: npt.NDArray[np.floating], same: Sequence[bool], out: str | os.PathLike[str], title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = roc(scores, same)
    keep = far > 0
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.semilogx(far[keep], tar[keep], lw=2)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_xlim(left=max(float(far[keep].min()) if keep.any() else 1e-6, 1e-6), right=1.0)
    ax.set_ylim(0.0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target


def write_json(report: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    return target
