"""The audit log of gallery changes, on both gallery backends: who, when, what; never an
embedding or image bytes."""

from __future__ import annotations

import json
import logging
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from service.audit import AuditLog
from tests.helpers import b64, need_milvus
from tests.reliability.apps import BOTH, MANAGE, running, settings_for


def _numbers_or_blobs(value: Any, where: str = "") -> list[str]:
    """Paths of anything that could carry an embedding or image: a float, a list holding a
    number, a long string."""
    found = []
    if isinstance(value, float):
        found.append(where)
    elif isinstance(value, list):
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            found.append(where)
        for i, v in enumerate(value):
            found += _numbers_or_blobs(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            found += _numbers_or_blobs(v, f"{where}.{k}")
    elif isinstance(value, str) and len(value) > 64:
        found.append(where)
    return found


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_enrolments_and_deletions_are_audited(
    backend: str,
    test_pack: Path,
    insightface_images: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "milvus":
        need_milvus()
    caplog.set_level(logging.INFO, logger="facerec.audit")
    audit_path = tmp_path / "logs" / "audit.jsonl"
    settings = settings_for(
        test_pack, tmp_path / "data", gallery_backend=backend, audit_log=audit_path
    )
    crop = b64((insightface_images / "Tom_Hanks_54745.png").read_bytes())  # aligned 112×112
    started = datetime.now(timezone.utc)
    with running(settings, key=MANAGE) as c:
        ada = c.post("/identities", json={"name": "Ada", "metadata": {"team": "x"}}).json()["id"]
        added = c.post(f"/identities/{ada}/faces", json={"image": [crop, crop], "aligned": True})
        assert added.status_code == 201, added.text
        faces = [f["id"] for f in added.json()["faces"]]
        assert c.patch(f"/identities/{ada}", json={"name": "Ada L."}).status_code == 200
        assert c.delete(f"/identities/{ada}/faces/{faces[0]}").status_code == 204
        # a refused enrolment (one bad image of two) changes nothing and is not audited
        refused = c.post(f"/identities/{ada}/faces", json={"image": [crop, b64(b"junk")]})
        assert refused.status_code == 400
        bob = c.post("/identities", json={"name": "Bob"}, headers={"X-API-Key": BOTH}).json()
        assert c.delete(f"/identities/{ada}").status_code == 204
    ended = datetime.now(timezone.utc)

    assert stat.S_IMODE(audit_path.stat().st_mode) == 0o600
    lines = audit_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["action"], r["actor"], r["identity_id"]) for r in records] == [
        ("identity.create", "admin", ada),
        ("faces.add", "admin", ada),
        ("identity.update", "admin", ada),
        ("face.delete", "admin", ada),
        ("identity.create", "both", bob["id"]),
        ("identity.delete", "admin", ada),
    ]
    assert records[1]["face_ids"] == faces
    assert records[2]["fields"] == ["name"]
    assert records[3]["face_ids"] == [faces[0]]
    assert records[5]["face_ids"] == [faces[1]]  # what the deletion took with it
    for record in records:
        when = datetime.fromisoformat(record["time"])
        assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
        assert started <= when <= ended
        assert set(record) <= {"time", "actor", "action", "identity_id", "face_ids", "fields"}
        assert not _numbers_or_blobs(record), record
    text = audit_path.read_text()
    assert "Ada" not in text and "team" not in text  # names and metadata values stay out
    for key in (MANAGE, BOTH):
        assert key not in text
    logged = [r.getMessage() for r in caplog.records if r.name == "facerec.audit"]
    assert logged == lines
    print(f"\naudit ({backend}): {len(records)} records, {len(text)} bytes, no numbers or blobs")


def test_audit_log_refuses_unknown_actions(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(ValueError):
        audit.record("admin", "identity.embed", "ab")
    audit.record("admin", "identity.create", "ab")
    audit.close()
    audit.record("admin", "identity.delete", "ab")  # reopens after close
    audit.close()
    assert [json.loads(x)["action"] for x in (tmp_path / "a.jsonl").read_text().splitlines()] == [
        "identity.create",
        "identity.delete",
    ]


def test_default_audit_log_is_in_the_data_dir(test_pack: Path, tmp_path: Path) -> None:
    settings = settings_for(test_pack, tmp_path / "data")
    assert settings.audit_log_path == tmp_path / "data" / "audit.jsonl"


def test_bulk_enrolment_is_audited(
    test_pack: Path, insightface_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``facerec enrol`` writes the gallery directly; it audits what it adds, once."""
    from click.testing import CliRunner

    from service.cli import cli
    from tests.helpers import one_face_jpeg

    person = tmp_path / "people" / "ada"
    person.mkdir(parents=True)
    (person / "1.jpg").write_bytes(one_face_jpeg(insightface_images, test_pack))
    audit_path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("FACEREC_AUDIT_LOG", str(audit_path))
    args = ["enrol", str(tmp_path / "people"), "--pack", str(test_pack)]
    args += ["--data-dir", str(tmp_path / "data"), "--device", "cpu"]
    for _ in range(2):  # the second run resumes: nothing new, nothing audited
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert [(r["actor"], r["action"]) for r in records] == [
        ("facerec enrol", "identity.create"),
        ("facerec enrol", "faces.add"),
    ]
    assert records[0]["identity_id"] == records[1]["identity_id"]
    assert len(records[1]["face_ids"]) == 1 and not _numbers_or_blobs(records[1])
