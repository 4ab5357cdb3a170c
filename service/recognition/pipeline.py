"""The face pipeline: image bytes → decode → detect → align → embed.

:class:`Pipeline` is the synchronous Python API (one call, one image, no event loop);
:class:`AsyncPipeline` is what the service runs: the same steps, with detection and
embedding batched across concurrent requests and every heavy step off the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from service.errors import TooManyFaces
from service.inference.batcher import MicroBatcher
from service.inference.embedder import Embedder
from service.vision.align import align_faces, as_aligned_crop, template_for
from service.vision.decode import DecodeLimits, decode_image
from service.vision.detectors.base import Detector, DetectorConfig, RGBImage
from service.vision.faces import DetectedFace

__all__ = ["AsyncPipeline", "BatchObserver", "Face", "Pipeline"]

Embedding = npt.NDArray[np.float32]
BatchObserver = Callable[[int, float], None]  # (items, seconds) of one model call
In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Face(DetectedFace):
    """A detected face (box, score, five landmarks) and its unit-norm embedding."""

    embedding: Embedding  # (E,)


def _aligned_face(crop: RGBImage, embedding: Embedding) -> Face:
    size = float(crop.shape[0])
    return Face(
        bbox=np.array([0.0, 0.0, size, size], np.float32),
        score=1.0,
        landmarks=template_for(crop.shape[0]).astype(np.float32),
        embedding=embedding,
    )


class Pipeline:
    """Synchronous pipeline over a detector and an embedder."""

    def __init__(
        self, detector: Detector, embedder: Embedder, limits: DecodeLimits | None = None
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.limits = limits or DecodeLimits()

    @classmethod
    def from_pack(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str = "auto",
        detector: DetectorConfig | None = None,
        limits: DecodeLimits | None = None,
        threads: int = 0,
        landmarks: Literal["detector", "onet"] | None = None,
    ) -> Pipeline:
        """A pipeline over a model pack folder (``manifest.json`` and its ONNX files).

        ``detector`` settings left unset (threshold, landmarks) take the pack's defaults."""
        from service.models.loading import build_detector, build_embedder
        from service.models.packs import load_pack

        pack = load_pack(path)
        config = detector or DetectorConfig()
        return cls(
            build_detector(pack, config, device, landmarks),
            build_embedder(pack, device, threads),
            limits,
        )

    def decode(self, data: bytes) -> RGBImage:
        return decode_image(data, self.limits)

    def faces_in(self, image: RGBImage, max_faces: int | None = None) -> list[Face]:
        """Every face in a decoded RGB image, highest detector score first."""
        detected = self.detector.detect([image])[0]
        if max_faces is not None:
            detected = detected[:max_faces]
        if not detected:
            return []
        crops = align_faces(image, detected, self.embedder.input_size)
        embeddings = self.embedder.embed(crops)
        return [_with_embedding(d, e) for d, e in zip(detected, embeddings, strict=True)]

    def faces(self, data: bytes, max_faces: int | None = None) -> list[Face]:
        """Every face in the image ``data`` (JPEG, PNG, WebP or BMP bytes)."""
        return self.faces_in(self.decode(data), max_faces)

    def aligned_face(self, data: bytes) -> Face:
        """The embedding of a crop the client aligned itself (no detection)."""
        crop = as_aligned_crop(self.decode(data), self.embedder.input_size)
        return _aligned_face(crop[0], self.embedder.embed(crop)[0])


def _with_embedding(face: DetectedFace, embedding: Embedding) -> Face:
    return Face(face.bbox, face.score, face.landmarks, embedding)


class AsyncPipeline:
    """The pipeline with detection and embedding batched across concurrent requests.

    ``observe``, given a model's name (``detect``, ``embed``), returns what is told the size
    and duration of each of its calls (the service's metrics), or None."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        detect_max_batch: int = 8,
        detect_max_wait_ms: float = 2.0,
        embed_max_batch: int = 64,
        embed_max_wait_ms: float = 2.0,
        max_queue: int = 2048,
        detect_workers: int = 1,
        embed_workers: int = 1,
        observe: Callable[[str], BatchObserver] | None = None,
    ) -> None:
        self.pipeline = pipeline

        def batcher(
            name: str, fn: Callable[[list[In]], Sequence[Out]], size: int, wait: float, workers: int
        ) -> MicroBatcher[In, Out]:
            on_batch = observe(name) if observe is not None else None
            return MicroBatcher(
                name,
                fn,
                max_batch=size,
                max_wait_ms=wait,
                max_queue=max_queue,
                workers=workers,
                on_batch=on_batch,
            )

        self.detect_batcher: MicroBatcher[RGBImage, list[DetectedFace]] = batcher(
            "detect", self._detect_batch, detect_max_batch, detect_max_wait_ms, detect_workers
        )
        self.embed_batcher: MicroBatcher[RGBImage, Embedding] = batcher(
            "embed", self._embed_batch, embed_max_batch, embed_max_wait_ms, embed_workers
        )

    def _detect_batch(self, images: list[RGBImage]) -> list[list[DetectedFace]]:
        return self.pipeline.detector.detect(images)

    def _embed_batch(self, crops: list[RGBImage]) -> Sequence[Embedding]:
        return list(self.pipeline.embedder.embed(np.stack(crops)))

    async def start(self) -> None:
        await self.detect_batcher.start()
        await self.embed_batcher.start()

    async def stop(self) -> None:
        await self.detect_batcher.stop()
        await self.embed_batcher.stop()

    async def decode(self, data: bytes) -> RGBImage:
        return await asyncio.to_thread(self.pipeline.decode, data)

    async def detect(self, image: RGBImage) -> list[DetectedFace]:
        return await self.detect_batcher.submit(image)

    async def embed_faces(
        self, image: RGBImage, faces: Sequence[DetectedFace], admitted: bool = False
    ) -> list[Face]:
        """``admitted``: the request passed the entrance check and its faces were detected;
        they are embedded even if the embedder's queue filled up meanwhile."""
        if not faces:
            return []
        crops = await asyncio.to_thread(
            align_faces, image, faces, self.pipeline.embedder.input_size
        )
        embeddings = await self.embed_batcher.submit_many(list(crops), admitted=admitted)
        return [_with_embedding(d, e) for d, e in zip(faces, embeddings, strict=True)]

    async def faces(
        self, data: bytes, max_faces: int | None = None, *, limit: int | None = None
    ) -> list[Face]:
        """Decode, detect, align, embed: the ``max_faces`` best-scored faces of ``data``.

        Overloaded (either model's queue full) is raised before decoding or detection: a
        request is refused at once or served to the end. An image holding more than
        ``limit`` faces is refused with ``TooManyFaces`` before any is embedded (the detector
        must then keep at least ``limit + 1`` to tell)."""
        self.detect_batcher.admit()
        self.embed_batcher.admit()
        image = await self.decode(data)
        detected = await self.detect(image)
        if limit is not None and len(detected) > limit:
            raise TooManyFaces(
                f"the image holds more than {limit} faces, the most one request may carry "
                "(FACEREC_MAX_FACES)"
            )
        if max_faces is not None:
            detected = detected[:max_faces]
        return await self.embed_faces(image, detected, admitted=True)

    async def aligned_face(self, data: bytes) -> Face:
        self.embed_batcher.admit()  # overloaded: refuse before decoding
        image = await self.decode(data)
        crop = as_aligned_crop(image, self.pipeline.embedder.input_size)
        embedding = await self.embed_batcher.submit(crop[0])
        return _aligned_face(crop[0], embedding)
