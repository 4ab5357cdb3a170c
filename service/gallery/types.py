"""What every gallery backend offers, and the records they exchange (search hits, migrations)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from service.gallery.store import FaceRow, IdentityRow

__all__ = ["Gallery", "IdentityRecord", "Match"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Match:
    identity_id: str
    name: str
    similarity: float


@dataclass
class IdentityRecord:
    """One identity with its faces and their embeddings, as moved between backends."""

    identity: IdentityRow
    faces: list[FaceRow] = field(default_factory=list)
    embeddings: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class Gallery(Protocol):
    """What the service needs of a gallery, whatever stores it (FAISS + SQLite, or Milvus)."""

    def size(self) -> int: ...
    def create_identity(
        self, name: str, external_id: str | None, metadata: dict[str, Any]
    ) -> IdentityRow: ...
    def get_identity(self, identity_id: str) -> IdentityRow: ...
    def identity_by_external_id(self, external_id: str) -> IdentityRow | None: ...
    def list_identities(self, limit: int, offset: int) -> tuple[list[IdentityRow], int]: ...
    def update_identity(self, identity_id: str, changes: dict[str, Any]) -> IdentityRow: ...
    def delete_identity(self, identity_id: str) -> None: ...
    def add_faces(
        self,
        identity_id: str,
        embeddings: F32,
        qualities: Sequence[tuple[float, float, float]],
        source: str | None = None,
    ) -> list[FaceRow]: ...
    def delete_face(self, identity_id: str, face_id: str) -> None: ...
    def list_faces(self, identity_id: str) -> list[FaceRow]: ...
    def template(self, identity_id: str) -> F32: ...
    def search(self, queries: F32, k: int) -> list[list[Match]]: ...
    def bulk_enrol(self, names: Sequence[str], embeddings: F32) -> int: ...
    def journal(self, source: str, outcome: str) -> None: ...
    def journaled(self) -> dict[str, str]: ...
    def counts(self) -> dict[str, int]: ...
    def dump(self) -> Iterator[IdentityRecord]: ...
    def restore(self, record: IdentityRecord) -> None: ...
    def close(self) -> None: ...
