"""Consistency checks of the FAISS gallery: SQLite's invariants, and the index against SQLite.

Used by the reliability tests after crashes and concurrent writes, and by ``facerec gallery
check``. Each check returns a list of problems in words; an empty list means consistent.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from service.gallery.gallery import FaissGallery
from service.gallery.store import feature_centre

__all__ = ["index_problems", "store_problems"]

_TOLERANCE = 1e-5


def store_problems(path: str | os.PathLike[str], limit: int = 20) -> list[str]:
    """What is wrong in the SQLite gallery at ``path`` (opened read-only): file integrity,
    orphan faces, face counts, embeddings (size, finite, unit) and templates (the normalised
    mean of the faces' embeddings, or none when there are no faces)."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    problems: list[str] = []
    try:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            problems.extend(f"integrity: {line}" for line in integrity)
        orphans = db.execute(
            "SELECT COUNT(*) FROM faces f LEFT JOIN identities i ON f.identity_seq = i.seq "
            "WHERE i.seq IS NULL"
        ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} faces belong to no identity")
        size = int(dict(db.execute("SELECT key, value FROM meta").fetchall())["embedding_size"])
        for seq, ident, template, face_count in db.execute(
            "SELECT seq, id, template, face_count FROM identities ORDER BY seq"
        ).fetchall():
            blobs = db.execute(
                "SELECT embedding FROM faces WHERE identity_seq = ? ORDER BY seq", (seq,)
            ).fetchall()
            problems.extend(_identity_problems(ident, template, face_count, blobs, size))
            if len(problems) >= limit:
                break
    finally:
        db.close()
    return problems[:limit]


def _identity_problems(
    ident: str, template: bytes | None, face_count: int, blobs: list[tuple[bytes]], size: int
) -> list[str]:
    if face_count != len(blobs):
        return [f"identity {ident}: face_count {face_count}, {len(blobs)} faces stored"]
    if any(len(b[0]) != 4 * size for b in blobs):
        return [f"identity {ident}: an embedding is not {size} float32 values"]
    embeddings = (
        np.stack([np.frombuffer(b[0], np.float32) for b in blobs])
        if blobs
        else np.zeros((0, size), np.float32)
    )
    if not np.isfinite(embeddings).all():
        return [f"identity {ident}: a non-finite embedding"]
    if len(blobs) and np.abs(np.linalg.norm(embeddings, axis=1) - 1).max() > _TOLERANCE:
        return [f"identity {ident}: an embedding is not unit length"]
    centre = feature_centre(embeddings)
    if (centre is None) != (template is None):
        return [f"identity {ident}: template {'missing' if template is None else 'stale'}"]
    if centre is not None and template is not None:
        stored = np.frombuffer(template, np.float32)
        if stored.shape != centre.shape or np.abs(stored - centre).max() > _TOLERANCE:
            return [f"identity {ident}: template differs from the mean of its faces"]
    return []


def index_problems(gallery: FaissGallery, limit: int = 20) -> list[str]:
    """Where the in-memory index differs from SQLite: the same identities searchable, each
    with its template's vector (a CPU FAISS index; other index kinds are not inspected)."""
    expected: dict[int, np.ndarray] = {}
    for seqs, vectors in gallery.store.templates():
        expected.update(zip(seqs.tolist(), vectors, strict=True))
    indexed = gallery.index.entries()
    problems: list[str] = []
    for seq in sorted(expected.keys() - indexed.keys()):
        problems.append(f"identity seq {seq} has a template in SQLite but is not searchable")
    for seq in sorted(indexed.keys() - expected.keys()):
        problems.append(f"identity seq {seq} is searchable but has no template in SQLite")
    for seq in sorted(expected.keys() & indexed.keys()):
        if np.abs(expected[seq] - indexed[seq]).max() > _TOLERANCE:
            problems.append(f"identity seq {seq}: the index holds a stale template")
    if len(gallery.index) != len(indexed):
        problems.append(f"index counts {len(gallery.index)} live vectors, holds {len(indexed)}")
    return problems[:limit]
