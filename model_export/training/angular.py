"""Angular statistics of 2-D features: class centres, extents and the gap between neighbours.

Definitions (used by the toy experiment and written down in docs/training.md):

- a feature's *angle* is ``atan2(y, x)``; only the angle enters a normalised-softmax loss;
- a class's *centre* is the angle of the mean of its unit-length features (circular mean);
- its *extent* is the arc ``[centre + lo, centre + hi]`` where ``lo``/``hi`` are the
  ``q`` and ``1 − q`` quantiles of its features' signed deviations from the centre
  (``q = 0``: every sample, so one stray sample widens the arc);
- the *gap* between two classes whose centres are adjacent on the circle is the angle from
  the counter-clockwise edge of the first extent to the clockwise edge of the second;
  negative when the extents overlap;
- the *angular gap* of a feature set is the smallest gap over the adjacent pairs: the room
  left between the nearest classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ClassArc", "angular_gap", "class_arcs", "wrap"]

FloatArray = npt.NDArray[np.float64]


def wrap(angle: FloatArray | float) -> FloatArray:
    """Angles in radians mapped to [−π, π)."""
    return np.asarray((np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi, dtype=np.float64)


@dataclass(frozen=True)
class ClassArc:
    label: int
    centre: float  # radians, [−π, π)
    lo: float  # signed deviation of the clockwise edge from the centre (≤ 0 usually)
    hi: float  # signed deviation of the counter-clockwise edge


def class_arcs(
    features: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], q: float = 0.0
) -> list[ClassArc]:
    """Each class's centre and extent, sorted counter-clockwise by centre."""
    if features.ndim != 2 or features.shape[1] != 2:
        raise ValueError(f"expected (N, 2) features, got {features.shape}")
    if not 0.0 <= q < 0.5:
        raise ValueError(f"the quantile q must be in [0, 0.5), got {q}")
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    angles = np.arctan2(unit[:, 1], unit[:, 0])
    arcs = []
    for label in np.unique(labels):
        mine = labels == label
        mean = unit[mine].mean(axis=0)
        centre = float(np.arctan2(mean[1], mean[0]))
        deviation = wrap(angles[mine] - centre)
        lo, hi = np.quantile(deviation, [q, 1.0 - q])
        arcs.append(ClassArc(int(label), centre, float(lo), float(hi)))
    return sorted(arcs, key=lambda a: a.centre)


def angular_gap(
    features: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], q: float = 0.0
) -> tuple[float, tuple[int, int]]:
    """The smallest gap (radians) between adjacent classes' extents, and that pair's labels."""
    arcs = class_arcs(features, labels, q)
    if len(arcs) < 2:
        raise ValueError("need at least two classes")
    best = (np.inf, (arcs[0].label, arcs[0].label))
    for a, b in zip(arcs, arcs[1:] + arcs[:1], strict=True):
        between = float((b.centre - a.centre) % (2 * np.pi))  # counter-clockwise, a → b
        gap = between - a.hi + b.lo
        if gap < best[0]:
            best = (gap, (a.label, b.label))
    return best
