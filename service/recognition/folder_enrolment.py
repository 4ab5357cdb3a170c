"""``facerec enrol DIR``: bulk enrolment from a folder with one sub-folder per identity.

Each sub-folder becomes an identity (its name; ``external_id`` = the folder name, so a rerun
finds it again). Each image must hold exactly one usable face (the enrolment rule the API
applies, :func:`~service.recognition.choice.enrolment_face`); others are skipped and the
reason counted. Every image's outcome is journaled in the gallery database in the same
transaction as its face, keyed by folder and content hash: an interrupted run, started again,
continues where it stopped and enrols nothing twice.

It writes the gallery directly: run it while the service is stopped, or restart the service
afterwards so its index picks the new identities up. With an :class:`AuditLog`, each identity
it creates and each face it enrols is audited as the API's are (actor ``facerec enrol``),
through the same :class:`~service.recognition.changes.GalleryChanges`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from service.audit import AuditLog
from service.errors import FaceRecError
from service.gallery.types import Gallery
from service.recognition.changes import GalleryChanges
from service.recognition.choice import enrolment_face
from service.recognition.pipeline import Pipeline

__all__ = ["EnrolSummary", "enrol_folder"]

log = logging.getLogger(__name__)
ACTOR = "facerec enrol"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


@dataclass
class EnrolSummary:
    identities: int = 0
    enrolled: int = 0
    already_done: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def enrol_folder(
    root: Path,
    pipeline: Pipeline,
    gallery: Gallery,
    progress: Callable[[int], None] | None = None,
    audit: AuditLog | None = None,
) -> EnrolSummary:
    summary = EnrolSummary()
    changes = GalleryChanges(gallery, audit, ACTOR)
    done = gallery.journaled()
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    for folder in folders:
        identity = gallery.identity_by_external_id(folder.name)
        if identity is None:
            identity = changes.create_identity(
                folder.name, folder.name, {"enrolled_from": "folder"}
            )
        summary.identities += 1
        for image in _images(folder):
            data = image.read_bytes()
            source = f"{folder.name}/{hashlib.sha256(data).hexdigest()}"
            if source in done:
                summary.already_done += 1
            else:
                reason = _enrol_one(pipeline, changes, identity.id, data, source)
                if reason is None:
                    summary.enrolled += 1
                else:
                    summary.skipped[reason] += 1
                    summary.skipped_files.append((str(image.relative_to(root)), reason))
                    gallery.journal(source, f"skipped: {reason}")
            if progress is not None:
                progress(1)
    return summary


def _enrol_one(
    pipeline: Pipeline, changes: GalleryChanges, identity_id: str, data: bytes, source: str
) -> str | None:
    """None when enrolled, else the reason it was skipped (the error code: ``no_face``,
    ``too_many_faces``, ``invalid_image``, ...)."""
    try:
        face = enrolment_face(pipeline.faces(data), None, source)
    except FaceRecError as exc:
        return exc.code
    changes.add_faces(identity_id, [face], source)
    return None


def count_images(root: Path) -> int:
    return sum(len(_images(p)) for p in root.iterdir() if p.is_dir())
