"""The gallery: SQLite as truth, the FAISS index derived from it.

Every change commits to SQLite first, then updates the index: the index is never the only
copy, and it is rebuilt from SQLite at every start. A delete returns only after both, and a
search maps its hits back through SQLite, dropping any identity no longer there — so an
identity whose delete was acknowledged is never returned.

Changes that touch the index hold one write lock across both steps, so the index sees them in
the order SQLite committed them: without it, two requests racing on one identity (two
enrolments, or an enrolment and the delete) could leave the index with a stale template or a
deleted identity's vector until the next start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.errors import EmptyIdentity
from service.gallery.index import TemplateIndex
from service.gallery.store import FaceRow, IdentityRow, Store
from service.gallery.types import Gallery, IdentityRecord, Match

__all__ = ["FaissGallery", "Gallery", "IdentityRecord", "Match"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]


class FaissGallery:
    """SQLite (``gallery.sqlite3`` in ``data_dir``) + an in-memory FAISS index."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        model_id: str,
        embedding_size: int,
        index_device: str = "cpu",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir / "gallery.sqlite3", model_id, embedding_size)
        self.index = TemplateIndex(embedding_size, device=index_device)
        self._writing = threading.Lock()  # SQLite commit + index update, as one step
        loaded = 0
        for seqs, vectors in self.store.templates():
            self.index.upsert(seqs, vectors)
            loaded += len(seqs)
        self.index.compact()
        log.info("gallery %s: %d searchable identities", self.data_dir, loaded)

    def size(self) -> int:
        return len(self.index)

    def create_identity(
        self, name: str, external_id: str | None, metadata: dict[str, Any]
    ) -> IdentityRow:
        return self.store.create_identity(name, external_id, metadata)

    def get_identity(self, identity_id: str) -> IdentityRow:
        return self.store.get_identity(identity_id)

    def list_identities(self, limit: int, offset: int) -> tuple[list[IdentityRow], int]:
        return self.store.list_identities(limit, offset)

    def update_identity(self, identity_id: str, changes: dict[str, Any]) -> IdentityRow:
        return self.store.update_identity(identity_id, changes)

    def delete_identity(self, identity_id: str) -> None:
        with self._writing:
            seq = self.store.delete_identity(identity_id)
            self.index.remove([seq])

    def _reindex(self, seq: int, centre: F32 | None) -> None:
        if centre is None:
            self.index.remove([seq])
        else:
            self.index.upsert([seq], centre[None])

    def add_faces(
        self,
        identity_id: str,
        embeddings: F32,
        qualities: Sequence[tuple[float, float, float]],
        source: str | None = None,
    ) -> list[FaceRow]:
        with self._writing:
            seq, rows, centre = self.store.add_faces(identity_id, embeddings, qualities, source)
            self._reindex(seq, centre)
        return rows

    def delete_face(self, identity_id: str, face_id: str) -> None:
        with self._writing:
            seq, centre = self.store.delete_face(identity_id, face_id)
            self._reindex(seq, centre)

    def list_faces(self, identity_id: str) -> list[FaceRow]:
        return self.store.list_faces(identity_id)

    def template(self, identity_id: str) -> F32:
        found = self.store.template(identity_id)
        if found is None:
            raise EmptyIdentity(f"identity {identity_id!r} has no enrolled face")
        return found

    def bulk_enrol(self, names: Sequence[str], embeddings: F32) -> int:
        """Many one-face identities at once (load tests, migrations)."""
        with self._writing:
            seqs, templates = self.store.bulk_enrol(names, embeddings)
            self.index.upsert(seqs, templates)
        return len(seqs)

    def search(self, queries: F32, k: int) -> list[list[Match]]:
        scores, seqs = self.index.search(queries, k)
        known = self.store.names([int(s) for s in seqs.ravel() if s >= 0])
        results = []
        for row_scores, row_seqs in zip(scores, seqs, strict=True):
            matches = []
            for score, seq in zip(row_scores, row_seqs, strict=True):
                if seq < 0 or int(seq) not in known:
                    continue
                identity_id, name = known[int(seq)]
                matches.append(Match(identity_id, name, float(np.clip(score, -1.0, 1.0))))
            results.append(matches)
        return results

    def identity_by_external_id(self, external_id: str) -> IdentityRow | None:
        return self.store.identity_by_external_id(external_id)

    def journal(self, source: str, outcome: str) -> None:
        self.store.journal(source, outcome)

    def journaled(self) -> dict[str, str]:
        return self.store.journaled()

    def dump(self) -> Iterator[IdentityRecord]:
        for identity, faces, embeddings in self.store.dump():
            yield IdentityRecord(identity, faces, embeddings)

    def restore(self, record: IdentityRecord) -> None:
        with self._writing:
            seq, centre = self.store.restore(record.identity, record.faces, record.embeddings)
            self._reindex(seq, centre)

    def counts(self) -> dict[str, int]:
        identities, searchable, faces = self.store.counts()
        return {
            "identities": identities,
            "searchable": searchable,
            "faces": faces,
            "indexed": len(self.index),
        }

    def close(self) -> None:
        """Close SQLite once any change in progress has reached both SQLite and the index."""
        with self._writing:
            self.store.close()
