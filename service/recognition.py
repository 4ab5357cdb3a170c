"""Recognition decisions shared by the routes: which face, how similar, which identity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from service.errors import NoFaceFound
from service.pipeline import AsyncPipeline, Face

__all__ = ["cosine", "faces_of", "select_face"]


def select_face(faces: Sequence[Face], how: Literal["largest", "best"], what: str) -> Face:
    """The largest face (by box area) or the best-scored one; ``NoFaceFound`` if none."""
    if not faces:
        raise NoFaceFound(f"no face found in {what}")
    if how == "best":
        return max(faces, key=lambda f: f.score)
    return max(faces, key=lambda f: f.width * f.height)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two unit vectors, clipped to [-1, 1]."""
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


async def faces_of(
    pipeline: AsyncPipeline,
    data: bytes,
    *,
    aligned: bool,
    max_faces: int | None,
    limit: int | None = None,
) -> list[Face]:
    """Faces of one image: detected, or the image itself when it is an aligned crop.

    ``max_faces`` keeps the best-scored faces (the client's choice); an image with more
    than ``limit`` faces (the service's ``FACEREC_MAX_FACES``) is refused, 422
    ``too_many_faces``, rather than silently cut.
    """
    if aligned:
        return [await pipeline.aligned_face(data)]
    return await pipeline.faces(data, max_faces, limit=limit)
