"""Recognition decisions shared by the routes: which face, how similar, which identity."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

import numpy as np

from service.errors import NoFaceFound
from service.recognition.pipeline import AsyncPipeline, Face

__all__ = ["cosine", "faces_of", "faces_of_each", "select_face"]


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


async def faces_of_each(
    pipeline: AsyncPipeline,
    images: Sequence[bytes],
    *,
    aligned: bool,
    max_faces: int | None,
    limit: int | None = None,
) -> list[list[Face]]:
    """Faces of several images of one request, concurrently; all or nothing.

    When one image fails (no room in a queue, undecodable), the others are cancelled at once:
    their items still queued are skipped by the batchers instead of taking model time and
    queue room from the requests that come next."""
    tasks = [
        asyncio.ensure_future(
            faces_of(pipeline, d, aligned=aligned, max_faces=max_faces, limit=limit)
        )
        for d in images
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
