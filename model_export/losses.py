"""The ArcFace paper's margin losses: the combined margin of Eq. 4 and its named settings.

The target logit of a sample whose feature makes the angle θ with its class centre is

    s · (cos(m1·θ + m2) − m3)                                             (Eq. 4)

and every other logit is ``s · cos θ``. ``(m1, m2, m3) = (1, 0.5, 0)`` is ArcFace (Eq. 3),
``(1, 0, 0.35)`` CosFace, ``(1.35, 0, 0)`` a SphereFace-like multiplicative margin and
``(1, 0, 0)`` the Norm-Softmax baseline (features and weights normalised, no margin).

Where the margined angle ``m1·θ + m2`` passes π, ``cos`` turns back up and the target logit
would *grow* with θ, rewarding a sample for moving away from its class. The reference
implementations replace the target logit there by a function that keeps decreasing:

- ``m1 == 1`` (ArcFace, CosFace, and their combinations): insightface ``arcface_torch``'s
  ``cos θ − m2·sin m2`` (the first-order expansion of cos(θ + m2) at θ = π − m2), minus m3.
- ``m1 != 1``: SphereFace's ψ(θ) = (−1)^k · cos(m1·θ + m2) − 2k with
  ``k = ⌊(m1·θ + m2) / π⌋``, continuous and decreasing on [0, π], minus m3.

The margin is computed in float32 whatever the input's dtype (fp16 and bfloat16 cannot hold
``1 − 1e-7``, and ``acos``'s derivative is infinite at ±1), with the cosine clamped just inside
[−1, 1]; the returned logits are float32, as autocast returns softmax inputs.
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

# how far inside [−1, 1] the cosine is kept before acos/sqrt: their derivatives are infinite at
# the ends; a float32 number this close to 1 is still representable
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


def _margined_cosine(cos_theta: torch.Tensor, margin: Margin) -> torch.Tensor:
    """``cos(m1·θ + m2) − m3`` for the target cosines, kept decreasing past π (float32)."""
    if margin.m1 == 1.0 and margin.m2 == 0.0:  # CosFace and Norm-Softmax: no angle needed
        return cos_theta.float() - margin.m3
    c = cos_theta.float().clamp(-1.0 + _COS_EPS, 1.0 - _COS_EPS)
    if margin.m1 == 1.0:
        cos_m, sin_m = math.cos(margin.m2), math.sin(margin.m2)
        sin_theta = torch.sqrt(1.0 - c * c)
        cos_theta_m = c * cos_m - sin_theta * sin_m  # cos(θ + m2)
        # θ + m2 < π ⇔ cos θ > cos(π − m2)
        past_pi = c <= math.cos(math.pi - margin.m2)
        return torch.where(past_pi, c - margin.m2 * sin_m, cos_theta_m) - margin.m3
    angle = margin.m1 * torch.acos(c) + margin.m2
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
