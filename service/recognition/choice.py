"""Which face of an image a use case takes: the face compared (verify, evaluation) and the
face enrolled (the API's enrolment and ``facerec enrol``, one rule for both)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

from service.errors import NoFaceFound, TooManyFaces
from service.vision.faces import DetectedFace

__all__ = ["BOX_MIN_IOU", "enrolment_face", "iou", "select_face"]

F = TypeVar("F", bound=DetectedFace)

BOX_MIN_IOU = 0.3  # a box picks the detected face it overlaps at least this much


def select_face(faces: Sequence[F], how: Literal["largest", "best"], what: str) -> F:
    """The largest face (by box area) or the best-scored one; ``NoFaceFound`` if none."""
    if not faces:
        raise NoFaceFound(f"no face found in {what}")
    if how == "best":
        return max(faces, key=lambda f: f.score)
    return max(faces, key=lambda f: f.area)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def enrolment_face(faces: Sequence[F], box: Sequence[float] | None, where: str) -> F:
    """The enrolment rule: the image's one usable face, or the one ``box`` picks.

    ``NoFaceFound`` when there is no face (or none at the box), ``TooManyFaces`` when there
    are several and no box to choose; ``where`` names the image in the message."""
    if not faces:
        raise NoFaceFound(f"no face found in {where}")
    if box is not None:
        best = max(faces, key=lambda f: iou([float(v) for v in f.bbox], box))
        if iou([float(v) for v in best.bbox], box) < BOX_MIN_IOU:
            raise NoFaceFound(f"no face at the given box in {where}")
        return best
    if len(faces) > 1:
        raise TooManyFaces(f"{where} holds {len(faces)} faces; give a box to choose one")
    return faces[0]
