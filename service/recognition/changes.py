"""Changes to a gallery on behalf of someone, each recorded in the audit log once committed.

The API (actor: the API key's name) and ``facerec enrol`` (actor ``facerec enrol``) change
identities and faces only through :class:`GalleryChanges`, so every change is audited the same
way whichever way it came. Blocking (SQLite or Milvus, then a write and an ``fsync``): the
service calls these methods from a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.audit import AuditLog
from service.gallery.store import FaceRow, IdentityRow
from service.gallery.types import Gallery
from service.recognition.pipeline import Face
from service.vision.faces import DetectedFace

__all__ = ["GalleryChanges", "face_quality"]


def face_quality(face: DetectedFace) -> tuple[float, float, float]:
    """What is stored of an enrolled face besides its embedding: detector score, box size."""
    return (round(face.score, 5), round(face.width, 1), round(face.height, 1))


@dataclass(frozen=True)
class GalleryChanges:
    """``gallery`` changed by ``actor``; ``audit`` None: not audited (tests, tools)."""

    gallery: Gallery
    audit: AuditLog | None
    actor: str

    def _record(self, action: str, identity_id: str, **details: Sequence[str]) -> None:
        if self.audit is not None:
            self.audit.record(self.actor, action, identity_id, **details)

    def create_identity(
        self, name: str, external_id: str | None, metadata: dict[str, Any]
    ) -> IdentityRow:
        row = self.gallery.create_identity(name, external_id, metadata)
        self._record("identity.create", row.id)
        return row

    def update_identity(self, identity_id: str, changes: dict[str, Any]) -> IdentityRow:
        row = self.gallery.update_identity(identity_id, changes)
        self._record("identity.update", identity_id, fields=list(changes))
        return row

    def delete_identity(self, identity_id: str) -> None:
        """The identity and its faces, for good; the audit names the faces deleted with it."""
        faces = self.gallery.list_faces(identity_id)
        self.gallery.delete_identity(identity_id)
        self._record("identity.delete", identity_id, face_ids=[f.id for f in faces])

    def add_faces(
        self, identity_id: str, faces: Sequence[Face], source: str | None = None
    ) -> list[FaceRow]:
        """Enrol the faces' embeddings and quality figures (never an image); ``source``
        journals where they came from (``facerec enrol``'s resume key)."""
        embeddings = np.stack([f.embedding for f in faces])
        qualities = [face_quality(f) for f in faces]
        rows = self.gallery.add_faces(identity_id, embeddings, qualities, source)
        self._record("faces.add", identity_id, face_ids=[r.id for r in rows])
        return rows

    def delete_face(self, identity_id: str, face_id: str) -> None:
        self.gallery.delete_face(identity_id, face_id)
        self._record("face.delete", identity_id, face_ids=[face_id])
