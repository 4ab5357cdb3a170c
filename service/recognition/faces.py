"""The faces of a request's images: detected, or the image itself when it is an aligned crop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.recognition.pipeline import AsyncPipeline, Face

__all__ = ["faces_of", "faces_of_each"]


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
