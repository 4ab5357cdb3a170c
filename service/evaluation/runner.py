"""Embeddings for evaluation, batched through the service's own pipeline code and its face
choice (the largest face, as ``/verify`` takes by default)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from service.errors import FaceRecError
from service.inference.embedder import l2_normalise
from service.recognition.choice import select_face
from service.recognition.pipeline import Pipeline
from service.vision.align import align_faces, as_aligned_crop

F32 = npt.NDArray[np.float32]

__all__ = ["embed_images"]


def _crop(pipeline: Pipeline, data: bytes, aligned: bool, size: int) -> npt.NDArray[np.uint8]:
    image = pipeline.decode(data)
    if aligned:
        crops = as_aligned_crop(image, size)
    else:
        face = select_face(pipeline.detector.detect([image])[0], "largest", "image")
        crops = align_faces(image, [face], size)
    crop: npt.NDArray[np.uint8] = crops[0]
    return crop


def embed_images(
    pipeline: Pipeline,
    images: Sequence[bytes],
    *,
    aligned: bool,
    flip: bool = False,
    batch: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[F32, list[bool]]:
    """One embedding per image (its largest face, or the crop itself when ``aligned``) and
    whether a face was found (a miss gets a zero vector: it matches nothing). ``flip`` adds the
    mirrored crop's embedding before normalising, the test-time augmentation of insightface's
    evaluations."""
    size = pipeline.embedder.input_size
    crops = np.zeros((len(images), size, size, 3), np.uint8)
    found = [True] * len(images)
    for i, data in enumerate(images):
        try:
            crops[i] = _crop(pipeline, data, aligned, size)
        except FaceRecError:
            found[i] = False
        if progress is not None:
            progress(1)
    embeddings = np.zeros((len(images), pipeline.embedder.embedding_size), np.float32)
    for start in range(0, len(images), batch):
        chunk = crops[start : start + batch]
        raw = pipeline.embedder.embed(chunk)
        if flip:
            mirrored = pipeline.embedder.embed(np.ascontiguousarray(chunk[:, :, ::-1]))
            raw = l2_normalise(raw + mirrored)
        embeddings[start : start + len(chunk)] = raw
    embeddings[~np.asarray(found)] = 0.0
    return embeddings, found
