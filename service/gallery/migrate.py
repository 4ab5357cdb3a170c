"""Copy a gallery from one backend to the other, keeping ids, names, faces and embeddings."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.errors import EmptyIdentity, GalleryMismatch, IdentityNotFound
from service.gallery.store import IdentityRow
from service.gallery.types import Gallery

__all__ = ["MigrationSummary", "migrate"]

_COUNTED = ("identities", "searchable", "faces")


@dataclass
class MigrationSummary:
    copied: int = 0
    already_there: int = 0
    source_counts: dict[str, int] = field(default_factory=dict)
    target_counts: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    sample_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The counts agree and every sampled identity came through whole."""
        counts_agree = all(self.target_counts.get(k) == self.source_counts.get(k) for k in _COUNTED)
        return counts_agree and not self.sample_mismatches


def _find(gallery: Gallery, identity_id: str) -> IdentityRow | None:
    try:
        return gallery.get_identity(identity_id)
    except IdentityNotFound:
        return None


def _same(source: Gallery, target: Gallery, identity_id: str) -> bool:
    """Same name, metadata, faces and template (to float32 rounding) on both sides."""
    a, b = source.get_identity(identity_id), _find(target, identity_id)
    if b is None or (a.name, a.external_id, a.metadata) != (b.name, b.external_id, b.metadata):
        return False
    faces_a = [(f.id, f.score) for f in source.list_faces(identity_id)]
    faces_b = [(f.id, f.score) for f in target.list_faces(identity_id)]
    if sorted(faces_a) != sorted(faces_b):
        return False
    try:
        ta = source.template(identity_id)
    except EmptyIdentity:
        ta = None
    try:
        tb = target.template(identity_id)
    except EmptyIdentity:
        tb = None
    if ta is None or tb is None:
        return ta is None and tb is None
    return bool(np.allclose(ta, tb, atol=1e-5))


def migrate(
    source: Gallery,
    target: Gallery,
    progress: Callable[[int], None] | None = None,
    sample: int = 100,
    seed: int = 0,
) -> MigrationSummary:
    """Copy every identity of ``source`` that ``target`` lacks; then compare counts and a
    random sample of identities field by field.

    Resumable: an identity already in the target (same id, same face count) is left as it
    is, so a migration cut short can simply be run again."""
    summary = MigrationSummary(source_counts=source.counts())
    ids: list[str] = []
    for record in source.dump():
        ids.append(record.identity.id)
        existing = _find(target, record.identity.id)
        if existing is None:
            target.restore(record)
            summary.copied += 1
        elif existing.face_count == len(record.faces):
            summary.already_there += 1
        else:
            raise GalleryMismatch(
                f"identity {record.identity.id!r} is in the target with {existing.face_count} "
                f"faces, the source has {len(record.faces)}: the target was changed since; "
                "migrate into an empty gallery"
            )
        if progress is not None:
            progress(1)
    summary.target_counts = target.counts()
    chosen = random.Random(seed).sample(ids, min(sample, len(ids)))
    summary.sampled = len(chosen)
    summary.sample_mismatches = [i for i in chosen if not _same(source, target, i)]
    return summary
