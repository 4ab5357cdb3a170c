"""The paper's metrics from similarity scores (NumPy; a pair is accepted by the service's
match rule, :func:`service.recognition.matching.accepts`).

- **10-fold verification accuracy** (LFW's protocol): the pairs are split into ten
  consecutive folds; for each, the threshold that maximises accuracy on the other nine is
  applied to it; the mean and standard deviation over folds are reported.
- **ROC, TAR@FAR, EER**: the threshold for a false-accept rate is the smallest score that
  accepts at most that fraction of impostor pairs; TAR is the fraction of genuine pairs at or
  above it.
- **CMC / rank-k identification**: the fraction of probes whose true identity is among the
  k most similar gallery identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

import numpy as np
import numpy.typing as npt

from service.recognition.matching import accepts

__all__ = [
    "FoldAccuracy",
    "cmc",
    "eer",
    "kfold_accuracy",
    "roc",
    "round_up",
    "tar_at_far",
    "threshold_for_far",
]

Scores = npt.NDArray[np.floating]
Labels = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FoldAccuracy:
    mean: float
    std: float
    thresholds: list[float]
    accuracies: list[float]


def _accuracy(scores: Scores, same: Labels, threshold: float) -> float:
    return float(np.mean(accepts(scores, threshold) == same))


def _best_threshold(scores: Scores, same: Labels) -> float:
    """The threshold maximising accuracy: a midpoint between consecutive sorted scores."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate(
        [[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]]
    )
    accuracies = [(_accuracy(scores, same, t), -abs(t)) for t in candidates]
    return float(candidates[int(np.argmax([a for a, _ in accuracies]))])


def kfold_accuracy(scores: Scores, same: Sequence[bool] | Labels, folds: int = 10) -> FoldAccuracy:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    if len(s) != len(y) or len(s) < folds:
        raise ValueError(f"need at least {folds} pairs with one label each")
    indices = np.array_split(np.arange(len(s)), folds)
    thresholds, accuracies = [], []
    for test in indices:
        train = np.setdiff1d(np.arange(len(s)), test)
        t = _best_threshold(s[train], y[train])
        thresholds.append(t)
        accuracies.append(_accuracy(s[test], y[test], t))
    return FoldAccuracy(
        float(np.mean(accuracies)), float(np.std(accuracies)), thresholds, accuracies
    )


def threshold_for_far(scores: Scores, same: Sequence[bool] | Labels, far: float) -> float:
    """The smallest threshold accepting at most ``far`` of the impostor pairs."""
    s = np.asarray(scores, dtype=np.float64)
    impostors = np.sort(s[~np.asarray(same, dtype=bool)])[::-1]
    if len(impostors) == 0:
        raise ValueError("no impostor pairs")
    allowed = int(np.floor(far * len(impostors)))
    if allowed >= len(impostors):
        return float(impostors[-1])
    # accept scores strictly above the (allowed+1)-th highest impostor score
    return float(np.nextafter(impostors[allowed], np.inf))


def round_up(threshold: float, decimals: int) -> float:
    """``threshold`` rounded *up* to ``decimals`` places: a shorter number to store or show
    that accepts no score the exact one refuses (rounding to the nearest can fall below the
    boundary impostor's score, and ``similarity >= threshold`` would then accept it)."""
    step = Decimal(1).scaleb(-decimals)
    # Decimal(float) is exact, and float() of a decimal ≥ t is ≥ t (rounding is monotonic)
    return float(Decimal(threshold).quantize(step, rounding=ROUND_CEILING))


def tar_at_far(
    scores: Scores,
    same: Sequence[bool] | Labels,
    fars: Sequence[float],
    decimals: int | None = None,
) -> dict[float, tuple[float, float]]:
    """``far → (TAR, threshold)``; a FAR below 1 / impostors is not measurable and is left out.

    With ``decimals``, each threshold is rounded up to that many places (:func:`round_up`) and
    the TAR is the one at the rounded threshold: what a service applying it would see."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    n_impostors = int((~y).sum())
    out = {}
    for far in fars:
        if far * n_impostors < 1:
            continue
        t = threshold_for_far(s, y, far)
        if decimals is not None:
            t = round_up(t, decimals)
        out[far] = (float(np.mean(accepts(s[y], t))), t)
    return out


def roc(scores: Scores, same: Sequence[bool] | Labels) -> tuple[Scores, Scores, Scores]:
    """``(far, tar, thresholds)`` at every distinct score, thresholds descending."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    thresholds = np.unique(s)[::-1]
    genuine, impostor = np.sort(s[y]), np.sort(s[~y])
    tar = 1.0 - np.searchsorted(genuine, thresholds, side="left") / max(len(genuine), 1)
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / max(len(impostor), 1)
    return far, tar, thresholds


def eer(scores: Scores, same: Sequence[bool] | Labels) -> float:
    """Equal error rate: where the false-accept and false-reject rates cross."""
    far, tar, _ = roc(scores, same)
    frr = 1.0 - tar
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def cmc(
    similarity: npt.NDArray[np.floating],
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
    max_rank: int = 10,
) -> npt.NDArray[np.float64]:
    """Cumulative match characteristic: ``cmc[k-1]`` is the rank-k identification rate."""
    sim = np.asarray(similarity, dtype=np.float64)
    gallery = np.asarray(gallery_labels)
    ranks = np.argsort(-sim, axis=1)[:, :max_rank]
    hits = gallery[ranks] == np.asarray(probe_labels)[:, None]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), max_rank)
    return np.array([np.mean(first < k) for k in range(1, max_rank + 1)])
