"""The match rule: cosine similarity of unit embeddings against a threshold.

Similarities are cosines in [-1, 1]; a pair matches when its similarity is at or above the
threshold (:func:`accepts`), on the unrounded cosine. The threshold is the request's, else
the one in effect (:class:`Threshold`): ``FACEREC_VERIFY_THRESHOLD`` where set, else the model
pack's (which ``facerec eval calibrate`` writes for a target false-accept rate). ``facerec
eval`` scores pairs and decides with the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from service.models.manifest import ThresholdSpec

__all__ = ["Threshold", "accepts", "best_match", "cosine"]


class _Scored(Protocol):
    @property
    def similarity(self) -> float: ...


M = TypeVar("M", bound=_Scored)


def cosine(a: npt.NDArray[np.floating[Any]], b: npt.NDArray[np.floating[Any]]) -> float:
    """Cosine similarity of two unit vectors, clipped to [-1, 1]."""
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


@overload
def accepts(similarity: float, threshold: float) -> bool: ...
@overload
def accepts(
    similarity: npt.NDArray[np.floating[Any]], threshold: float
) -> npt.NDArray[np.bool_]: ...
def accepts(
    similarity: float | npt.NDArray[np.floating[Any]], threshold: float
) -> bool | npt.NDArray[np.bool_]:
    """The match decision: similarity at or above the threshold (element-wise for arrays)."""
    return similarity >= threshold


def best_match(candidates: Sequence[M], threshold: float) -> M | None:
    """The best candidate (the first: candidates come most similar first) if it matches,
    judged on its similarity itself, not on its rounding for display (which could lift an
    impostor just below the threshold onto it)."""
    if candidates and accepts(candidates[0].similarity, threshold):
        return candidates[0]
    return None


@dataclass(frozen=True)
class Threshold:
    """The threshold in effect when a request gives none, and where it comes from."""

    value: float
    source: str  # "settings", or the pack's: "default", "calibrated", ...

    @classmethod
    def of(cls, setting: float | None, pack: ThresholdSpec) -> Threshold:
        """``FACEREC_VERIFY_THRESHOLD`` where set, else the pack's."""
        if setting is not None:
            return cls(setting, "settings")
        return cls(pack.value, pack.source)

    def or_requested(self, requested: float | None) -> float:
        """The request's threshold where it gives one, else this one."""
        return requested if requested is not None else self.value
