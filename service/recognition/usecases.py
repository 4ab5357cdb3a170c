"""The service's use cases: embed, identify, verify, enrol faces.

:class:`Recognition` holds what they run on (the batched pipeline, the batched gallery
search, the threshold in effect, the per-image face limit); each use case takes the gallery
it acts on. They return domain results (below) that the API maps to its response schemas.
Errors are domain errors (:mod:`service.errors`); nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from service.gallery.store import FaceRow, IdentityRow
from service.gallery.types import Gallery, Match
from service.recognition.changes import GalleryChanges
from service.recognition.choice import enrolment_face, select_face
from service.recognition.faces import faces_of, faces_of_each
from service.recognition.matching import Threshold, accepts, best_match, cosine
from service.recognition.pipeline import AsyncPipeline, Face
from service.recognition.search import GallerySearch

__all__ = [
    "ComparedFace",
    "Embedded",
    "Enrolment",
    "Identification",
    "IdentifiedFace",
    "Recognition",
    "Verification",
]

Which = Literal["largest", "best"]


@dataclass(frozen=True)
class Embedded:
    faces: list[Face]
    embedding_size: int

    @property
    def faces_found(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class IdentifiedFace(Face):
    """A face of the probe, its nearest identities, and the match among them (or None)."""

    candidates: list[Match]
    match: Match | None


@dataclass(frozen=True)
class Identification:
    faces: list[IdentifiedFace]
    threshold: float

    @property
    def faces_found(self) -> int:
        return len(self.faces)


@dataclass(frozen=True)
class ComparedFace(Face):
    """The face a verification compared, which image it came from, and how many it held."""

    source: Literal["image", "image2"]
    faces_found: int


@dataclass(frozen=True)
class Verification:
    similarity: float
    threshold: float
    match: bool
    faces: list[ComparedFace]
    identity_id: str | None = None


@dataclass(frozen=True)
class Enrolment:
    identity: IdentityRow
    faces: list[FaceRow]


def _compared(face: Face, source: Literal["image", "image2"], found: int) -> ComparedFace:
    return ComparedFace(face.bbox, face.score, face.landmarks, face.embedding, source, found)


class Recognition:
    """The use cases over one loaded model pack."""

    def __init__(
        self,
        pipeline: AsyncPipeline,
        search: GallerySearch,
        threshold: Threshold,
        max_faces: int,
    ) -> None:
        self.pipeline = pipeline
        self.search = search
        self.threshold = threshold
        self.max_faces = max_faces  # FACEREC_MAX_FACES: more in one image is refused

    @property
    def embedding_size(self) -> int:
        return self.pipeline.pipeline.embedder.embedding_size

    async def start(self) -> None:
        await self.pipeline.start()
        await self.search.start()

    async def stop(self) -> None:
        """Finish what is queued, then stop the batchers."""
        await self.pipeline.stop()
        await self.search.stop()

    def face_limit(self, requested: int | None) -> int:
        """Faces kept per image: the client's ``max_faces``, at most ``FACEREC_MAX_FACES``."""
        return min(requested or self.max_faces, self.max_faces)

    async def _faces(self, image: bytes, aligned: bool, max_faces: int | None) -> list[Face]:
        limit = self.face_limit(max_faces)
        return await faces_of(
            self.pipeline, image, aligned=aligned, max_faces=limit, limit=self.max_faces
        )

    async def embed(self, image: bytes, *, aligned: bool, max_faces: int | None) -> Embedded:
        """Every face of ``image`` (best scores first) with its embedding."""
        return Embedded(await self._faces(image, aligned, max_faces), self.embedding_size)

    async def identify(
        self,
        gallery: Gallery,
        image: bytes,
        *,
        aligned: bool,
        max_faces: int | None,
        top_k: int,
        threshold: float | None,
    ) -> Identification:
        """1:N: each face of ``image`` against ``gallery``; its match is the nearest identity
        if that one's similarity is at or above the threshold, else None (unknown)."""
        chosen = self.threshold.or_requested(threshold)
        self.search.admit()  # overloaded: refused before detection, not after
        faces = await self._faces(image, aligned, max_faces)
        found = await self.search.search(gallery, [f.embedding for f in faces], top_k)
        return Identification(
            [
                IdentifiedFace(
                    f.bbox, f.score, f.landmarks, f.embedding, matches, best_match(matches, chosen)
                )
                for f, matches in zip(faces, found, strict=True)
            ],
            chosen,
        )

    async def verify(
        self,
        image: bytes,
        image2: bytes,
        *,
        aligned: bool,
        face: Which,
        threshold: float | None,
    ) -> Verification:
        """1:1: the chosen face of ``image`` against that of ``image2``."""
        chosen = self.threshold.or_requested(threshold)
        limit = self.max_faces
        faces_a, faces_b = await faces_of_each(
            self.pipeline, [image, image2], aligned=aligned, max_faces=limit, limit=limit
        )
        a = select_face(faces_a, face, "image")
        b = select_face(faces_b, face, "image2")
        similarity = cosine(a.embedding, b.embedding)
        used = [_compared(a, "image", len(faces_a)), _compared(b, "image2", len(faces_b))]
        return Verification(similarity, chosen, accepts(similarity, chosen), used)

    async def verify_identity(
        self,
        gallery: Gallery,
        image: bytes,
        identity_id: str,
        *,
        aligned: bool,
        face: Which,
        threshold: float | None,
    ) -> Verification:
        """1:1: the chosen face of ``image`` against the template of an enrolled identity
        (its unknown or empty template is refused before any face is detected)."""
        chosen = self.threshold.or_requested(threshold)
        template = await asyncio.to_thread(gallery.template, identity_id)
        limit = self.max_faces
        faces = await faces_of(self.pipeline, image, aligned=aligned, max_faces=limit, limit=limit)
        a = select_face(faces, face, "image")
        similarity = cosine(a.embedding, template)
        used = [_compared(a, "image", len(faces))]
        return Verification(similarity, chosen, accepts(similarity, chosen), used, identity_id)

    async def add_faces(
        self,
        changes: GalleryChanges,
        identity_id: str,
        images: Sequence[bytes],
        *,
        box: Sequence[float] | None,
        aligned: bool,
    ) -> Enrolment:
        """Enrol one face of each image (:func:`~.choice.enrolment_face`). All images are
        checked before anything is stored: one bad image enrols none."""
        gallery = changes.gallery
        await asyncio.to_thread(gallery.get_identity, identity_id)  # unknown: 404 before work
        found = await faces_of_each(
            self.pipeline, images, aligned=aligned, max_faces=self.max_faces, limit=self.max_faces
        )
        chosen = [enrolment_face(faces, box, f"image {i + 1}") for i, faces in enumerate(found)]
        rows = await asyncio.to_thread(changes.add_faces, identity_id, chosen)
        return Enrolment(await asyncio.to_thread(gallery.get_identity, identity_id), rows)
