"""Audit log of gallery changes: who, when, what — never embeddings or image bytes.

One JSON object per line, appended to ``FACEREC_AUDIT_LOG`` (default
``DATA_DIR/audit.jsonl``) and emitted on the ``facerec.audit`` logger::

    {"time": "2026-12-02T04:10:00.123456+00:00", "actor": "admin",
     "action": "faces.add", "identity_id": "3f2a…", "face_ids": ["9b1c…"]}

``actor`` is the API key's *name* (never the key), ``time`` UTC ISO 8601. Actions:
``identity.create``, ``identity.update`` (``fields``: the names of the changed fields, not
their values), ``identity.delete`` (``face_ids``: the faces deleted with it), ``faces.add``,
``face.delete``. The record is written after the change is committed, whichever gallery
backend holds it; each record is one ``write`` to a file opened with ``O_APPEND`` and is
``fsync``-ed, so concurrent writers never interleave and a record survives a crash. The file
is created with mode 0600.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["ACTIONS", "AuditLog"]

log = logging.getLogger("facerec.audit")

ACTIONS = frozenset(
    {"identity.create", "identity.update", "identity.delete", "faces.add", "face.delete"}
)


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None

    def record(
        self,
        actor: str,
        action: str,
        identity_id: str,
        face_ids: Sequence[str] = (),
        fields: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Append one record and return it. Blocking (a write and an fsync): call it from a
        worker thread."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        entry: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(),
            "actor": actor,
            "action": action,
            "identity_id": identity_id,
        }
        if face_ids:
            entry["face_ids"] = [str(f) for f in face_ids]
        if fields:
            entry["fields"] = sorted(str(f) for f in fields)
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":"))
        with self._lock:
            fd = self._open()
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        log.info(line)
        return entry

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
