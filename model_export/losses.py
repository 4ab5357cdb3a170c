"""The ArcFace paper's margin losses: the combined margin of Eq. 4 and its named settings.

The target logit of a sample whose feature makes the angle θ with its class centre is

    s · (cos(m1·θ + m2) − m3)                                             (Eq. 4)

and every other logit is ``s · cos θ``. ``(m1, m2, m3) = (1, 0.5, 0)`` is ArcFace (Eq. 3),
``(1, 0, 0.35)`` CosFace, ``(1.35, 0, 0)`` a SphereFace-like multiplicative margin and
``(1, 0, 0)`` the Norm-Softmax baseline (features and weights normalised, no margin).

Where the margined angle ``m1·θ + m2`` passes π, ``cos`` turns back up and the target logit
would *grow* with θ, rewarding a sample for moving away from its class. There the target logit
is replaced by a function that keeps decreasing:

- ``m1 == 1`` (ArcFace, CosFace, and their combinations): ``cos θ − m2·sin m2``, minus m3: the
  fallback insightface ``arcface_torch`` used until December 2022 (its ``th``/``mm`` branch).
  It is *not* continuous with cos(θ + m2): at θ = π − m2 the target logit jumps from −1 to
  −cos m2 − m2·sin m2 (−1.117 for m2 = 0.5, 7.5 logits at s = 64), then decreases again.
- ``m1 != 1``: SphereFace's ψ(θ) = (−1)^k · cos(m1·θ + m2) − 2k with
  ``k = ⌊(m1·θ + m2) / π⌋``, continuous and decreasing on [0, π], minus m3.

The margin is computed in float32 whatever the input's dtype (fp16 and bfloat16 cannot hold
``1 − 1e-7``), and the returned logits are float32, as autocast returns softmax inputs. The
value is exact over the whole of [−1, 1]: ``m1 == 1`` uses the angle-addition identity
cos θ cos m2 − sin θ sin m2, with sin θ = √(1 − cos²θ) (no ``acos``); ``m1 != 1`` evaluates
``acos`` of the cosine itself. Only the *gradient* is taken from a clamped cosine where the
exact derivatives are infinite (√ at 0, ``acos`` at ±1), so it stays finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCFACE",
    "COSFACE",
    "MARGINS",
    "NORM_SOFTMAX",
    "SPHEREFACE",
    "CombinedMarginLoss",
    "Margin",
    "MarginHead",
]

# where the exact derivatives of acos (at ±1) and of √(1 − c²) (at c = ±1) are infinite, the
# gradient is taken at a cosine kept this far inside [−1, 1]; the value is never clamped
_COS_EPS = 1e-6


@dataclass(frozen=True)
class Margin:
    """The paper's margin parameters (Eq. 4) and feature scale ``s``."""

    m1: float = 1.0
    m2: float = 0.0
    m3: float = 0.0
    s: float = 64.0

    def __post_init__(self) -> None:
        if self.m1 < 1.0 or self.m2 < 0.0 or self.m3 < 0.0:
            raise ValueError(f"margins must satisfy m1 >= 1, m2 >= 0, m3 >= 0, got {self}")
        if self.m2 >= math.pi / 2:
            raise ValueError(f"m2 must be below π/2, got {self.m2}")
        if self.s <= 0.0:
            raise ValueError(f"the scale s must be positive, got {self.s}")

    def with_scale(self, s: float) -> Margin:
        return Margin(self.m1, self.m2, self.m3, s)


NORM_SOFTMAX = Margin(1.0, 0.0, 0.0)
ARCFACE = Margin(1.0, 0.5, 0.0)
COSFACE = Margin(1.0, 0.0, 0.35)
SPHEREFACE = Margin(1.35, 0.0, 0.0)

MARGINS: dict[str, Margin] = {
    "arcface": ARCFACE,
    "cosface": COSFACE,
    "sphereface": SPHEREFACE,
    "norm-softmax": NORM_SOFTMAX,
}


def _exact_value_finite_gradient(exact: torch.Tensor, clamped: torch.Tensor) -> torch.Tensor:
    """``exact``'s value with ``clamped``'s gradient (they differ only near ±1)."""
    return clamped + (exact - clamped).detach()


def _sin_of_angle(c: torch.Tensor) -> torch.Tensor:
    """sin θ = √(1 − cos²θ) for θ in [0, π]: exact value, finite gradient at cos θ = ±1."""
    exact = torch.sqrt(torch.clamp(1.0 - c * c, min=0.0))
    inside = c.clamp(-1.0 + _COS_EPS, 1.0 - _COS_EPS)
    return _exact_value_finite_gradient(exact, torch.sqrt(1.0 - inside * inside))


def _angle(c: torch.Tensor) -> torch.Tensor:
    """θ = acos(cos θ): exact value, finite gradient at cos θ = ±1."""
    exact = torch.acos(c.clamp(-1.0, 1.0))
    return _exact_value_finite_gradient(exact, torch.acos(c.clamp(-1.0 + _COS_EPS, 1.0 - _COS_EPS)))


def _margined_cosine(cos_theta: torch.Tensor, margin: Margin) -> torch.Tensor:
    """``cos(m1·θ + m2) − m3`` for the target cosines, kept decreasing past π (float32)."""
    c = cos_theta.float()
    if margin.m1 == 1.0 and margin.m2 == 0.0:  # CosFace and Norm-Softmax: no angle needed
        return c - margin.m3
    if margin.m1 == 1.0:
        cos_m, sin_m = math.cos(margin.m2), math.sin(margin.m2)
        cos_theta_m = c * cos_m - _sin_of_angle(c) * sin_m  # cos(θ + m2), angle addition
        # θ + m2 < π ⇔ cos θ > cos(π − m2)
        past_pi = c <= math.cos(math.pi - margin.m2)
        return torch.where(past_pi, c - margin.m2 * sin_m, cos_theta_m) - margin.m3
    angle = margin.m1 * _angle(c) + margin.m2
    k = torch.floor(angle / math.pi).detach()
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)  # (−1)^k
    return sign * torch.cos(angle) - 2.0 * k - margin.m3


class CombinedMarginLoss(nn.Module):
    """Cosine logits ``(N, C)`` and labels ``(N,)`` → margined, scaled logits ``(N, C)``.

    Feed the result to cross-entropy. A label of ``-1`` marks a sample whose class lies
    outside this set of columns (as in arcface_torch); its row gets no margin.
    """

    def __init__(self, margin: Margin = ARCFACE) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, cos_theta: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if cos_theta.dim() != 2 or labels.shape != cos_theta.shape[:1]:
            raise ValueError(
                f"expected logits (N, C) and labels (N,), got {tuple(cos_theta.shape)} and "
                f"{tuple(labels.shape)}"
            )
        logits = cos_theta.float()
        rows = torch.nonzero(labels >= 0, as_tuple=True)[0]
        cols = labels[rows].long()
        target = _margined_cosine(logits[rows, cols], self.margin)
        logits = logits.index_put((rows, cols), target)
        return logits * self.margin.s

    def extra_repr(self) -> str:
        m = self.margin
        return f"s={m.s}, m1={m.m1}, m2={m.m2}, m3={m.m3}"


class MarginHead(nn.Module):
    """The last layer of Fig. 2: normalised features against normalised class centres.

    ``weight`` (``num_classes × embedding_size``) holds one centre per identity; the head
    returns the margined, scaled logits of :class:`CombinedMarginLoss`.
    """

    def __init__(self, embedding_size: int, num_classes: int, margin: Margin = ARCFACE) -> None:
        super().__init__()
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.loss = CombinedMarginLoss(margin)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos θ between each feature and each class centre, in float32."""
        return F.linear(F.normalize(embeddings.float()), F.normalize(self.weight.float()))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.loss(self.cosine(embeddings), labels)
        return logits
