"""The gallery in Milvus: identities, faces and templates shared by stateless API replicas.

``uri`` is a Milvus server or cluster (``http://milvus:19530``) or a Milvus Lite folder
(``data/gallery.milvus.db``) for tests and laptops. Every replica pointing at the same Milvus
sees every acknowledged change at once: collections use ``Strong`` consistency, so a read
waits for all writes acknowledged before it.

Milvus has no multi-row transactions, so three rules stand in for them:

* **Templates converge.** After adding or deleting faces, a replica recomputes the template
  (the normalised mean of the identity's faces), writes it, and reads the face set again; if
  the set changed meanwhile it repeats. Whoever writes last has read the final face set after
  its write, so two replicas enrolling faces of one identity at once leave the mean of all.
* **Deletes are tombstoned first.** Deleting an identity records its id in a tombstone
  collection, then removes its row and faces. A concurrent enrolment that re-creates the row
  finds the tombstone and removes it again; searches drop tombstoned hits. An identity whose
  delete was acknowledged is never returned.
* **external_id stays unique.** Checked before insert and again after: of two identities
  created at once with one external_id, the later (by creation time, then id) removes itself.

Only embeddings (float32, L2-normalised) and face quality figures are stored, never a photo.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from service.errors import Conflict, EmptyIdentity, FaceNotFound, IdentityNotFound
from service.gallery.meta import check_meta, gallery_meta
from service.gallery.store import SCHEMA_VERSION, FaceRow, IdentityRow, feature_centre
from service.gallery.types import IdentityRecord, Match

if TYPE_CHECKING:
    from pymilvus import MilvusClient

__all__ = ["MilvusGallery", "stored_meta"]

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]

_ID_LEN = 32
_TEXT_LEN = 1024  # bytes: a 200-character name in any script
_DUMMY = [1.0, 0.0]  # Milvus wants a vector in every collection; bookkeeping ones carry this
_PAGE = 4096
_CONVERGE_TRIES = 64


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in(field: str, values: Sequence[str]) -> str:
    return f"{field} in [{', '.join(_quote(v) for v in values)}]"


def _unit(vectors: F32) -> F32:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: F32 = (vectors / norms).astype(np.float32)
    return out


def stored_meta(uri: str, token: str | None = None, prefix: str = "facerec") -> dict[str, str]:
    """The meta collection of an existing Milvus gallery (model id, embedding size)."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, token=token or "")
    try:
        if f"{prefix}_meta" not in client.list_collections():
            return {}
        rows = client.query(f"{prefix}_meta", filter="", output_fields=["key", "value"], limit=100)
        return {r["key"]: r["value"] for r in rows}
    finally:
        client.close()


class MilvusGallery:
    """The :class:`~service.gallery.gallery.Gallery` protocol over Milvus collections."""

    def __init__(
        self,
        uri: str,
        model_id: str,
        embedding_size: int,
        *,
        token: str | None = None,
        prefix: str = "facerec",
        index_type: str = "FLAT",
        index_params: dict[str, Any] | None = None,
        search_params: dict[str, Any] | None = None,
    ) -> None:
        from pymilvus import MilvusClient

        self.uri = uri
        self.embedding_size = embedding_size
        self.client: MilvusClient = MilvusClient(uri=uri, token=token or "")
        self._meta = f"{prefix}_meta"
        self._identities = f"{prefix}_identities"
        self._faces = f"{prefix}_faces"
        self._tombstones = f"{prefix}_tombstones"
        self._journal = f"{prefix}_journal"
        self._search_params = {"metric_type": "IP", "params": dict(search_params or {})}
        self._create(index_type, dict(index_params or {}))
        self._check_meta(model_id, embedding_size)
        log.info("gallery %s (Milvus %s): %d searchable identities", uri, prefix, self.size())

    # ---------- schema ----------

    def _create(self, index_type: str, index_params: dict[str, Any]) -> None:
        from pymilvus import DataType, MilvusClient

        c = self.client
        existing = set(c.list_collections())

        def make(name: str, fields: list[tuple[str, Any, dict[str, Any]]], vector: str) -> None:
            if name in existing:
                return
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            for field, dtype, kwargs in fields:
                schema.add_field(field, dtype, **kwargs)
            params = c.prepare_index_params()
            if vector == "template":
                params.add_index(
                    field_name=vector, index_type=index_type, metric_type="IP", params=index_params
                )
            else:
                params.add_index(field_name=vector, index_type="FLAT", metric_type="IP")
            c.create_collection(
                name, schema=schema, index_params=params, consistency_level="Strong"
            )

        key = {"is_primary": True, "max_length": _TEXT_LEN}
        pk = {"is_primary": True, "max_length": _ID_LEN}
        text = {"max_length": _TEXT_LEN}
        stamp = {"max_length": 40}
        dim = {"dim": self.embedding_size}
        dummy = ("v", DataType.FLOAT_VECTOR, {"dim": 2})
        make(
            self._meta,
            [("key", DataType.VARCHAR, key), ("value", DataType.VARCHAR, text), dummy],
            "v",
        )
        make(
            self._identities,
            [
                ("id", DataType.VARCHAR, pk),
                ("name", DataType.VARCHAR, text),
                ("external_id", DataType.VARCHAR, text),
                ("metadata", DataType.JSON, {}),
                ("face_count", DataType.INT64, {}),
                ("searchable", DataType.BOOL, {}),
                ("created_at", DataType.VARCHAR, stamp),
                ("updated_at", DataType.VARCHAR, stamp),
                ("template", DataType.FLOAT_VECTOR, dim),
            ],
            "template",
        )
        make(
            self._faces,
            [
                ("id", DataType.VARCHAR, pk),
                ("identity_id", DataType.VARCHAR, {"max_length": _ID_LEN}),
                ("score", DataType.DOUBLE, {}),
                ("width", DataType.DOUBLE, {}),
                ("height", DataType.DOUBLE, {}),
                ("created_at", DataType.VARCHAR, stamp),
                ("embedding", DataType.FLOAT_VECTOR, dim),
            ],
            "embedding",
        )
        make(
            self._tombstones,
            [("id", DataType.VARCHAR, pk), ("deleted_at", DataType.VARCHAR, stamp), dummy],
            "v",
        )
        make(
            self._journal,
            [
                ("source", DataType.VARCHAR, key),
                ("outcome", DataType.VARCHAR, text),
                ("created_at", DataType.VARCHAR, stamp),
                dummy,
            ],
            "v",
        )
        for name in (self._meta, self._identities, self._faces, self._tombstones, self._journal):
            c.load_collection(name)

    def _check_meta(self, model_id: str, embedding_size: int) -> None:
        wanted = gallery_meta(SCHEMA_VERSION, model_id, embedding_size)
        rows = self.client.query(self._meta, filter="", output_fields=["key", "value"], limit=100)
        meta = {r["key"]: r["value"] for r in rows}
        if not meta:
            self.client.insert(
                self._meta, [{"key": k, "value": v, "v": _DUMMY} for k, v in wanted.items()]
            )
            return
        check_meta(meta, wanted, f"{self.uri} ({self._identities})", "another collection prefix")

    # ---------- reading helpers ----------

    def _rows(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``, paged (Milvus caps one query's window)."""
        offset = 0
        while True:
            page = self.client.query(
                collection, filter=expr, output_fields=fields, limit=_PAGE, offset=offset
            )
            yield from page
            if len(page) < _PAGE:
                return
            offset += _PAGE

    def _identity_row(self, identity_id: str) -> dict[str, Any] | None:
        rows = self.client.query(
            self._identities,
            filter=f"id == {_quote(identity_id)}",
            output_fields=[
                "id",
                "name",
                "external_id",
                "metadata",
                "face_count",
                "created_at",
                "updated_at",
            ],
        )
        return rows[0] if rows else None

    @staticmethod
    def _to_identity(row: dict[str, Any]) -> IdentityRow:
        return IdentityRow(
            0,
            row["id"],
            row["name"],
            row["external_id"] or None,
            dict(row["metadata"] or {}),
            int(row["face_count"]),
            datetime.fromisoformat(row["created_at"]),
            datetime.fromisoformat(row["updated_at"]),
        )

    def _tombstoned(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = self.client.query(
            self._tombstones, filter=_in("id", list(ids)), output_fields=["id"]
        )
        return {r["id"] for r in rows}

    def _require(self, identity_id: str) -> dict[str, Any]:
        row = self._identity_row(identity_id)
        if row is None:
            raise IdentityNotFound(f"no identity {identity_id!r}")
        return row

    # ---------- identities ----------

    def size(self) -> int:
        rows = self.client.query(
            self._identities, filter="searchable == true", output_fields=["count(*)"]
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def _external_owner(self, external_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.client.query(
            self._identities,
            filter=f"external_id == {_quote(external_id)}",
            output_fields=["id", "created_at"],
        )
        return rows

    def create_identity(
        self, name: str, external_id: str | None, metadata: dict[str, Any]
    ) -> IdentityRow:
        if external_id and self._external_owner(external_id):
            raise Conflict(f"an identity with external_id {external_id!r} exists")
        now = _now()
        identity_id = uuid.uuid4().hex
        row: dict[str, Any] = {
            "id": identity_id,
            "name": name,
            "external_id": external_id or "",
            "metadata": metadata,
            "face_count": 0,
            "searchable": False,
            "created_at": now,
            "updated_at": now,
            "template": [0.0] * self.embedding_size,
        }
        self.client.insert(self._identities, [row])
        if external_id:
            self._settle_external_id(identity_id, external_id)
        return self._to_identity(row)

    def _settle_external_id(self, identity_id: str, external_id: str) -> None:
        """Of identities created at once with one external_id, the earliest keeps it."""
        owners = sorted((r["created_at"], r["id"]) for r in self._external_owner(external_id))
        if owners and owners[0][1] != identity_id:
            self.client.delete(self._identities, ids=[identity_id])
            raise Conflict(f"an identity with external_id {external_id!r} exists")

    def get_identity(self, identity_id: str) -> IdentityRow:
        return self._to_identity(self._require(identity_id))

    def identity_by_external_id(self, external_id: str) -> IdentityRow | None:
        owners = sorted((r["created_at"], r["id"]) for r in self._external_owner(external_id))
        if not owners:
            return None
        row = self._identity_row(owners[0][1])
        return None if row is None else self._to_identity(row)

    def list_identities(self, limit: int, offset: int) -> tuple[list[IdentityRow], int]:
        # Milvus returns rows in no set order: the order (creation time, then id) is made here,
        # from the two short fields of every identity; the page's rows are then fetched.
        keys = sorted(
            (r["created_at"], r["id"])
            for r in self._rows(self._identities, "", ["id", "created_at"])
        )
        page = [identity_id for _, identity_id in keys[offset : offset + limit]]
        if not page:
            return [], len(keys)
        rows = {
            r["id"]: r
            for r in self.client.query(
                self._identities,
                filter=_in("id", page),
                output_fields=[
                    "id",
                    "name",
                    "external_id",
                    "metadata",
                    "face_count",
                    "created_at",
                    "updated_at",
                ],
            )
        }
        return [self._to_identity(rows[i]) for i in page if i in rows], len(keys)

    def update_identity(self, identity_id: str, changes: dict[str, Any]) -> IdentityRow:
        row = self._require(identity_id)
        fields = {k: v for k, v in changes.items() if k in ("name", "external_id", "metadata")}
        if "external_id" in fields:
            fields["external_id"] = fields["external_id"] or ""
            new = fields["external_id"]
            if new and any(r["id"] != identity_id for r in self._external_owner(new)):
                raise Conflict(f"an identity with external_id {new!r} exists")
        if fields:
            update = {"id": identity_id, **fields, "updated_at": _now()}
            self.client.upsert(self._identities, [update], partial_update=True)
            if self._tombstoned([identity_id]):
                self._purge(identity_id)
                raise IdentityNotFound(f"no identity {identity_id!r}")
            row = self._require(identity_id)
        return self._to_identity(row)

    def _purge(self, identity_id: str) -> None:
        self.client.delete(self._identities, ids=[identity_id])
        self.client.delete(self._faces, filter=f"identity_id == {_quote(identity_id)}")

    def delete_identity(self, identity_id: str) -> None:
        self._require(identity_id)
        self.client.upsert(
            self._tombstones, [{"id": identity_id, "deleted_at": _now(), "v": _DUMMY}]
        )
        self._purge(identity_id)

    # ---------- faces and templates ----------

    def _faces_of(self, identity_id: str, vectors: bool) -> list[dict[str, Any]]:
        fields = ["id", "score", "width", "height", "created_at"]
        if vectors:
            fields.append("embedding")
        rows = list(self._rows(self._faces, f"identity_id == {_quote(identity_id)}", fields))
        return sorted(rows, key=lambda r: (r["created_at"], r["id"]))

    def _converge(self, identity_id: str) -> None:
        """Write the template of the identity's current faces until no one changed them."""
        for _ in range(_CONVERGE_TRIES):
            faces = self._faces_of(identity_id, vectors=True)
            used = {f["id"] for f in faces}
            embeddings = (
                np.asarray([f["embedding"] for f in faces], np.float32)
                if faces
                else np.zeros((0, self.embedding_size), np.float32)
            )
            centre = feature_centre(embeddings)
            update = {
                "id": identity_id,
                "face_count": len(faces),
                "searchable": centre is not None,
                "updated_at": _now(),
                "template": (
                    centre if centre is not None else np.zeros(self.embedding_size, np.float32)
                ).tolist(),
            }
            if self._identity_row(identity_id) is None:
                raise IdentityNotFound(f"no identity {identity_id!r}")
            self.client.upsert(self._identities, [update], partial_update=True)
            if self._tombstoned([identity_id]):
                self._purge(identity_id)
                raise IdentityNotFound(f"no identity {identity_id!r}")
            if {f["id"] for f in self._faces_of(identity_id, vectors=False)} == used:
                return
            time.sleep(0.001)
        raise RuntimeError(f"template of {identity_id!r} kept changing; try again")

    def add_faces(
        self,
        identity_id: str,
        embeddings: F32,
        qualities: Sequence[tuple[float, float, float]],
        source: str | None = None,
    ) -> list[FaceRow]:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must be (N, {self.embedding_size})")
        if not np.isfinite(embeddings).all():
            raise ValueError("embeddings must be finite")
        self._require(identity_id)
        now = _now()
        rows = [
            {
                "id": uuid.uuid4().hex,
                "identity_id": identity_id,
                "score": float(score),
                "width": float(width),
                "height": float(height),
                "created_at": now,
                "embedding": vector.tolist(),
            }
            for vector, (score, width, height) in zip(_unit(embeddings), qualities, strict=True)
        ]
        self.client.insert(self._faces, rows)
        try:
            self._converge(identity_id)
        except IdentityNotFound:
            self.client.delete(self._faces, ids=[r["id"] for r in rows])
            raise
        if source is not None:
            self.journal(source, "enrolled")
        stamp = datetime.fromisoformat(now)
        return [
            FaceRow(r["id"], identity_id, r["score"], r["width"], r["height"], stamp) for r in rows
        ]

    def delete_face(self, identity_id: str, face_id: str) -> None:
        self._require(identity_id)
        found = self.client.query(
            self._faces,
            filter=f"id == {_quote(face_id)} and identity_id == {_quote(identity_id)}",
            output_fields=["id"],
        )
        if not found:
            raise FaceNotFound(f"identity {identity_id!r} has no face {face_id!r}")
        self.client.delete(self._faces, ids=[face_id])
        self._converge(identity_id)

    def list_faces(self, identity_id: str) -> list[FaceRow]:
        self._require(identity_id)
        return [
            FaceRow(
                f["id"],
                identity_id,
                float(f["score"]),
                float(f["width"]),
                float(f["height"]),
                datetime.fromisoformat(f["created_at"]),
            )
            for f in self._faces_of(identity_id, vectors=False)
        ]

    def template(self, identity_id: str) -> F32:
        rows = self.client.query(
            self._identities,
            filter=f"id == {_quote(identity_id)}",
            output_fields=["searchable", "template"],
        )
        if not rows:
            raise IdentityNotFound(f"no identity {identity_id!r}")
        if not rows[0]["searchable"]:
            raise EmptyIdentity(f"identity {identity_id!r} has no enrolled face")
        return np.asarray(rows[0]["template"], np.float32)

    # ---------- search ----------

    def search(self, queries: F32, k: int) -> list[list[Match]]:
        if len(queries) == 0:
            return []
        hits = self.client.search(
            self._identities,
            data=np.asarray(queries, np.float32).tolist(),
            anns_field="template",
            limit=k,
            filter="searchable == true",
            output_fields=["name"],
            search_params=self._search_params,
        )
        found = [str(h["id"]) for row in hits for h in row]
        gone = self._tombstoned(sorted(set(found)))
        return [
            [
                Match(str(h["id"]), h["entity"]["name"], float(np.clip(h["distance"], -1.0, 1.0)))
                for h in row
                if str(h["id"]) not in gone
            ]
            for row in hits
        ]

    # ---------- bulk, journal, scans ----------

    def bulk_enrol(self, names: Sequence[str], embeddings: F32, chunk: int = 2000) -> int:
        """Many one-face identities at once (load tests, migrations)."""
        unit = _unit(embeddings)
        now = _now()
        for start in range(0, len(names), chunk):
            identities, faces = [], []
            for name, vector in zip(
                names[start : start + chunk], unit[start : start + chunk], strict=True
            ):
                identity_id = uuid.uuid4().hex
                values = vector.tolist()
                identities.append(
                    {
                        "id": identity_id,
                        "name": name,
                        "external_id": "",
                        "metadata": {},
                        "face_count": 1,
                        "searchable": True,
                        "created_at": now,
                        "updated_at": now,
                        "template": values,
                    }
                )
                faces.append(
                    {
                        "id": uuid.uuid4().hex,
                        "identity_id": identity_id,
                        "score": 1.0,
                        "width": 0.0,
                        "height": 0.0,
                        "created_at": now,
                        "embedding": values,
                    }
                )
            self.client.insert(self._faces, faces)
            self.client.insert(self._identities, identities)
        return len(names)

    def journal(self, source: str, outcome: str) -> None:
        self.client.upsert(
            self._journal,
            [{"source": source, "outcome": outcome, "created_at": _now(), "v": _DUMMY}],
        )

    def journaled(self) -> dict[str, str]:
        return {
            r["source"]: r["outcome"] for r in self._rows(self._journal, "", ["source", "outcome"])
        }

    def dump(self) -> Iterator[IdentityRecord]:
        keys = sorted(
            (r["created_at"], r["id"])
            for r in self._rows(self._identities, "", ["id", "created_at"])
        )
        for _, identity_id in keys:
            row = self._identity_row(identity_id)
            if row is None:
                continue  # deleted meanwhile
            faces = self._faces_of(identity_id, vectors=True)
            yield IdentityRecord(
                self._to_identity(row),
                [
                    FaceRow(
                        f["id"],
                        identity_id,
                        float(f["score"]),
                        float(f["width"]),
                        float(f["height"]),
                        datetime.fromisoformat(f["created_at"]),
                    )
                    for f in faces
                ],
                np.asarray([f["embedding"] for f in faces], np.float32).reshape(
                    len(faces), self.embedding_size
                ),
            )

    def restore(self, record: IdentityRecord) -> None:
        identity = record.identity
        if self._identity_row(identity.id) is not None:
            raise Conflict(f"identity {identity.id!r} exists")
        if identity.external_id and self._external_owner(identity.external_id):
            raise Conflict(f"an identity with external_id {identity.external_id!r} exists")
        embeddings = np.asarray(record.embeddings, np.float32).reshape(-1, self.embedding_size)
        centre = feature_centre(embeddings)
        if record.faces:
            self.client.insert(
                self._faces,
                [
                    {
                        "id": face.id,
                        "identity_id": identity.id,
                        "score": face.score,
                        "width": face.width,
                        "height": face.height,
                        "created_at": face.created_at.isoformat(timespec="microseconds"),
                        "embedding": vector.tolist(),
                    }
                    for face, vector in zip(record.faces, embeddings, strict=True)
                ],
            )
        template = centre if centre is not None else np.zeros(self.embedding_size, np.float32)
        self.client.insert(
            self._identities,
            [
                {
                    "id": identity.id,
                    "name": identity.name,
                    "external_id": identity.external_id or "",
                    "metadata": identity.metadata,
                    "face_count": len(record.faces),
                    "searchable": centre is not None,
                    "created_at": identity.created_at.isoformat(timespec="microseconds"),
                    "updated_at": identity.updated_at.isoformat(timespec="microseconds"),
                    "template": template.tolist(),
                }
            ],
        )

    def counts(self) -> dict[str, int]:
        def count(collection: str, expr: str = "") -> int:
            rows = self.client.query(collection, filter=expr, output_fields=["count(*)"])
            return int(rows[0]["count(*)"]) if rows else 0

        searchable = count(self._identities, "searchable == true")
        return {
            "identities": count(self._identities),
            "searchable": searchable,
            "faces": count(self._faces),
            "indexed": searchable,
        }

    def close(self) -> None:
        self.client.close()
