"""SQLite store: the gallery's source of truth (identities, faces, embeddings, templates).

WAL journal with ``synchronous=FULL``: a change is on disk when its transaction returns, so
whatever the service acknowledged survives a crash (``kill -9``) or power loss; a
transaction cut short leaves nothing behind. No photo is ever stored: only embeddings
(float32) and the face's quality figures.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.errors import Conflict, FaceNotFound, IdentityNotFound
from service.gallery.meta import check_meta, gallery_meta

__all__ = ["FaceRow", "IdentityRow", "Store", "feature_centre", "stored_meta"]

SCHEMA_VERSION = 1
F32 = npt.NDArray[np.float32]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    external_id TEXT UNIQUE,
    metadata TEXT NOT NULL,
    template BLOB,
    face_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    identity_seq INTEGER NOT NULL REFERENCES identities(seq) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    score REAL NOT NULL,
    width REAL NOT NULL,
    height REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_identity ON faces(identity_seq);
CREATE TABLE IF NOT EXISTS enrol_journal (
    source TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class IdentityRow:
    seq: int
    id: str
    name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FaceRow:
    id: str
    identity_id: str
    score: float
    width: float
    height: float
    created_at: datetime


_IDENTITY_COLUMNS = "seq, id, name, external_id, metadata, face_count, created_at, updated_at"


def _identity(row: sqlite3.Row | tuple[Any, ...]) -> IdentityRow:
    seq, id_, name, ext, meta, count, created, updated = row
    return IdentityRow(
        seq,
        id_,
        name,
        ext,
        json.loads(meta),
        count,
        datetime.fromisoformat(created),
        datetime.fromisoformat(updated),
    )


def feature_centre(embeddings: F32) -> F32 | None:
    """The normalised mean of the normalised embeddings (the paper's template); None if empty."""
    if len(embeddings) == 0:
        return None
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    mean = unit.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:  # opposite faces cancel out: no meaningful centre
        return None
    centre: F32 = (mean / norm).astype(np.float32)
    return centre


def stored_meta(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``meta`` table of an existing gallery database (model id, embedding size), read-only."""
    if not Path(path).is_file():
        return {}
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


class Store:
    """One SQLite connection shared by threads behind a lock (SQLite serialises writes anyway)."""

    def __init__(self, path: str | os.PathLike[str], model_id: str, embedding_size: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.embedding_size = embedding_size
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self.transaction() as db:
            for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                db.execute(statement)
            self._check_meta(db, model_id, embedding_size)

    def _check_meta(self, db: sqlite3.Connection, model_id: str, embedding_size: int) -> None:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        wanted = gallery_meta(SCHEMA_VERSION, model_id, embedding_size)
        if not meta:
            db.executemany("INSERT INTO meta VALUES (?, ?)", list(wanted.items()))
            return
        check_meta(meta, wanted, str(self.path), "another data directory")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------- identities ----------

    def _seq_of(self, db: sqlite3.Connection, identity_id: str) -> int:
        row = db.execute("SELECT seq FROM identities WHERE id = ?", (identity_id,)).fetchone()
        if row is None:
            raise IdentityNotFound(f"no identity {identity_id!r}")
        return int(row[0])

    def create_identity(
        self, name: str, external_id: str | None, metadata: dict[str, Any]
    ) -> IdentityRow:
        now = _now()
        identity_id = uuid.uuid4().hex
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO identities (id, name, external_id, metadata, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (identity_id, name, external_id, json.dumps(metadata), now, now),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"an identity with external_id {external_id!r} exists") from None
        return self.get_identity(identity_id)

    def get_identity(self, identity_id: str) -> IdentityRow:
        with self.reading() as db:
            row = db.execute(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE id = ?", (identity_id,)
            ).fetchone()
        if row is None:
            raise IdentityNotFound(f"no identity {identity_id!r}")
        return _identity(row)

    def list_identities(self, limit: int, offset: int) -> tuple[list[IdentityRow], int]:
        with self.reading() as db:
            rows = db.execute(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities ORDER BY seq LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            total = int(db.execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        return [_identity(r) for r in rows], total

    def update_identity(self, identity_id: str, changes: dict[str, Any]) -> IdentityRow:
        allowed = {"name", "external_id", "metadata"}
        fields = {k: v for k, v in changes.items() if k in allowed}
        if "metadata" in fields:
            fields["metadata"] = json.dumps(fields["metadata"])
        try:
            with self.transaction() as db:
                self._seq_of(db, identity_id)
                if fields:
                    assignments = ", ".join(f"{k} = ?" for k in fields)
                    db.execute(
                        f"UPDATE identities SET {assignments}, updated_at = ? WHERE id = ?",
                        (*fields.values(), _now(), identity_id),
                    )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"an identity with external_id {changes.get('external_id')!r} exists"
            ) from None
        return self.get_identity(identity_id)

    def delete_identity(self, identity_id: str) -> int:
        """Delete the identity and its faces for good; returns its seq."""
        with self.transaction() as db:
            seq = self._seq_of(db, identity_id)
            db.execute("DELETE FROM faces WHERE identity_seq = ?", (seq,))
            db.execute("DELETE FROM identities WHERE seq = ?", (seq,))
        return seq

    def names(self, seqs: Sequence[int]) -> dict[int, tuple[str, str]]:
        """``seq → (public id, name)`` for the identities that still exist."""
        if not seqs:
            return {}
        unique = sorted(set(int(s) for s in seqs))
        marks = ",".join("?" * len(unique))
        with self.reading() as db:
            rows = db.execute(
                f"SELECT seq, id, name FROM identities WHERE seq IN ({marks})", unique
            ).fetchall()
        return {int(seq): (id_, name) for seq, id_, name in rows}

    def template(self, identity_id: str) -> F32 | None:
        with self.reading() as db:
            row = db.execute(
                "SELECT template FROM identities WHERE id = ?", (identity_id,)
            ).fetchone()
        if row is None:
            raise IdentityNotFound(f"no identity {identity_id!r}")
        return None if row[0] is None else np.frombuffer(row[0], np.float32).copy()

    # ---------- faces ----------

    def _recompute(self, db: sqlite3.Connection, seq: int) -> F32 | None:
        blobs = db.execute(
            "SELECT embedding FROM faces WHERE identity_seq = ? ORDER BY seq", (seq,)
        ).fetchall()
        embeddings = (
            np.stack([np.frombuffer(b[0], np.float32) for b in blobs])
            if blobs
            else (np.zeros((0, self.embedding_size), np.float32))
        )
        centre = feature_centre(embeddings)
        db.execute(
            "UPDATE identities SET template = ?, face_count = ?, updated_at = ? WHERE seq = ?",
            (None if centre is None else centre.tobytes(), len(blobs), _now(), seq),
        )
        return centre

    def add_faces(
        self,
        identity_id: str,
        embeddings: F32,
        qualities: Sequence[tuple[float, float, float]],
        source: str | None = None,
    ) -> tuple[int, list[FaceRow], F32 | None]:
        """Store faces (embedding + (score, width, height)); returns seq, rows, new template.

        ``source`` (bulk enrolment) is journaled in the same transaction, so a resumed run
        knows exactly which images are in."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must be (N, {self.embedding_size})")
        if not np.isfinite(embeddings).all():
            raise ValueError("embeddings must be finite")
        now = _now()
        rows = []
        with self.transaction() as db:
            seq = self._seq_of(db, identity_id)
            for emb, (score, width, height) in zip(embeddings, qualities, strict=True):
                face_id = uuid.uuid4().hex
                unit = (emb / max(float(np.linalg.norm(emb)), 1e-12)).astype(np.float32)
                db.execute(
                    "INSERT INTO faces (id, identity_seq, embedding, score, width, height, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (face_id, seq, unit.tobytes(), score, width, height, now),
                )
                rows.append(
                    FaceRow(face_id, identity_id, score, width, height, datetime.fromisoformat(now))
                )
            centre = self._recompute(db, seq)
            if source is not None:
                db.execute("INSERT INTO enrol_journal VALUES (?, 'enrolled', ?)", (source, now))
        return seq, rows, centre

    def journal(self, source: str, outcome: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO enrol_journal VALUES (?, ?, ?)", (source, outcome, _now())
            )

    def journaled(self) -> dict[str, str]:
        with self.reading() as db:
            return dict(db.execute("SELECT source, outcome FROM enrol_journal").fetchall())

    def identity_by_external_id(self, external_id: str) -> IdentityRow | None:
        with self.reading() as db:
            row = db.execute(
                f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE external_id = ?", (external_id,)
            ).fetchone()
        return None if row is None else _identity(row)

    def delete_face(self, identity_id: str, face_id: str) -> tuple[int, F32 | None]:
        with self.transaction() as db:
            seq = self._seq_of(db, identity_id)
            cursor = db.execute(
                "DELETE FROM faces WHERE id = ? AND identity_seq = ?", (face_id, seq)
            )
            if cursor.rowcount == 0:
                raise FaceNotFound(f"identity {identity_id!r} has no face {face_id!r}")
            centre = self._recompute(db, seq)
        return seq, centre

    def list_faces(self, identity_id: str) -> list[FaceRow]:
        with self.reading() as db:
            seq = self._seq_of(db, identity_id)
            rows = db.execute(
                "SELECT id, score, width, height, created_at FROM faces WHERE identity_seq = ? "
                "ORDER BY seq",
                (seq,),
            ).fetchall()
        return [
            FaceRow(r[0], identity_id, r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows
        ]

    # ---------- bulk and scans ----------

    def bulk_enrol(
        self, names: Sequence[str], embeddings: F32, chunk: int = 5000
    ) -> tuple[npt.NDArray[np.int64], F32]:
        """Insert identities with one face each, fast (for load tests and migrations).

        Returns their seqs and templates (the normalised embeddings)."""
        now = _now()
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        unit = unit.astype(np.float32)
        seqs: list[int] = []
        for start in range(0, len(names), chunk):
            with self.transaction() as db:
                for name, vector in zip(
                    names[start : start + chunk], unit[start : start + chunk], strict=True
                ):
                    blob = vector.tobytes()
                    cursor = db.execute(
                        "INSERT INTO identities (id, name, external_id, metadata, template, "
                        "face_count, created_at, updated_at) VALUES (?, ?, NULL, '{}', ?, 1, ?, ?)",
                        (uuid.uuid4().hex, name, blob, now, now),
                    )
                    db.execute(
                        "INSERT INTO faces (id, identity_seq, embedding, score, width, height, "
                        "created_at) VALUES (?, ?, ?, 1.0, 0, 0, ?)",
                        (uuid.uuid4().hex, cursor.lastrowid, blob, now),
                    )
                    seqs.append(int(cursor.lastrowid or 0))
        return np.asarray(seqs, np.int64), unit

    def templates(self, batch: int = 20000) -> Iterator[tuple[npt.NDArray[np.int64], F32]]:
        """Every (seq, template) with a template, in chunks, for rebuilding the index."""
        last = 0
        while True:
            with self.reading() as db:
                rows = db.execute(
                    "SELECT seq, template FROM identities WHERE template IS NOT NULL AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            seqs = np.array([r[0] for r in rows], np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
            yield seqs, vectors
            last = int(seqs[-1])

    def dump(self, batch: int = 500) -> Iterator[tuple[IdentityRow, list[FaceRow], F32]]:
        """Every identity with its faces and their embeddings, in creation order."""
        last = 0
        while True:
            with self.reading() as db:
                rows = db.execute(
                    f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE seq > ? ORDER BY seq "
                    "LIMIT ?",
                    (last, batch),
                ).fetchall()
                if not rows:
                    return
                identities = [_identity(r) for r in rows]
                by_seq: dict[int, list[tuple[Any, ...]]] = {i.seq: [] for i in identities}
                marks = ",".join("?" * len(by_seq))
                for face in db.execute(
                    "SELECT identity_seq, id, score, width, height, created_at, embedding "
                    f"FROM faces WHERE identity_seq IN ({marks}) ORDER BY seq",
                    list(by_seq),
                ):
                    by_seq[int(face[0])].append(face[1:])
            for identity in identities:
                faces = by_seq[identity.seq]
                yield (
                    identity,
                    [
                        FaceRow(f[0], identity.id, f[1], f[2], f[3], datetime.fromisoformat(f[4]))
                        for f in faces
                    ],
                    np.stack([np.frombuffer(f[5], np.float32) for f in faces])
                    if faces
                    else np.zeros((0, self.embedding_size), np.float32),
                )
            last = identities[-1].seq

    def restore(
        self, identity: IdentityRow, faces: Sequence[FaceRow], embeddings: F32
    ) -> tuple[int, F32 | None]:
        """Insert an identity and its faces with their ids and times kept (migrations)."""
        try:
            with self.transaction() as db:
                cursor = db.execute(
                    "INSERT INTO identities (id, name, external_id, metadata, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        identity.id,
                        identity.name,
                        identity.external_id,
                        json.dumps(identity.metadata),
                        identity.created_at.isoformat(timespec="microseconds"),
                        identity.updated_at.isoformat(timespec="microseconds"),
                    ),
                )
                seq = int(cursor.lastrowid or 0)
                for face, vector in zip(faces, embeddings, strict=True):
                    db.execute(
                        "INSERT INTO faces (id, identity_seq, embedding, score, width, height, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            face.id,
                            seq,
                            np.asarray(vector, np.float32).tobytes(),
                            face.score,
                            face.width,
                            face.height,
                            face.created_at.isoformat(timespec="microseconds"),
                        ),
                    )
                updated = identity.updated_at.isoformat(timespec="microseconds")
                centre = self._recompute(db, seq)
                db.execute("UPDATE identities SET updated_at = ? WHERE seq = ?", (updated, seq))
        except sqlite3.IntegrityError:
            raise Conflict(
                f"identity {identity.id!r} (or its external_id or a face id) exists"
            ) from None
        return seq, centre

    def counts(self) -> tuple[int, int, int]:
        """(identities, identities with a template, faces)."""
        with self.reading() as db:
            identities = db.execute("SELECT COUNT(*) FROM identities").fetchone()[0]
            searchable = db.execute(
                "SELECT COUNT(*) FROM identities WHERE template IS NOT NULL"
            ).fetchone()[0]
            faces = db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        return int(identities), int(searchable), int(faces)
