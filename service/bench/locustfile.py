"""Load scenarios against a running facerec service (driven by run.py, or by hand).

Environment: FACEREC_LOAD_PROBE (a JPEG with one enrolled face), FACEREC_LOAD_IDENTITY (its
identity id), FACEREC_LOAD_SCENARIO (identify | verify | mixed | replicas), FACEREC_LOAD_API_KEY,
FACEREC_LOAD_HOSTS (replicas: the base URLs of two or more replicas sharing one gallery).
A response counts as a failure unless it is a 2xx with the expected answer (the probe's own
identity matched; in ``replicas``, an enrolment made through one replica found at once through
another, and its deletion through that one seen at once through the first).
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import HttpUser, constant, task

PROBE = open(os.environ["FACEREC_LOAD_PROBE"], "rb").read()  # noqa: SIM115
IDENTITY = os.environ["FACEREC_LOAD_IDENTITY"]
SCENARIO = os.environ.get("FACEREC_LOAD_SCENARIO", "identify")
KEY = os.environ.get("FACEREC_LOAD_API_KEY")
HOSTS = [h.rstrip("/") for h in os.environ.get("FACEREC_LOAD_HOSTS", "").split(",") if h]


def _identified(face: dict[str, Any]) -> bool:
    """The probe's identity is the match, or ties with it: the mixed scenario enrols the same
    probe image as short-lived identities, whose templates equal the probe's."""
    match = face.get("match")
    if not match:
        return False
    return any(
        c["identity_id"] == IDENTITY and c["similarity"] >= match["similarity"] - 1e-4
        for c in face.get("candidates", [])
    )


class FaceUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if KEY:
            self.client.headers["X-API-Key"] = KEY

    def _image(self) -> dict[str, tuple[str, bytes, str]]:
        return {"image": ("probe.jpg", PROBE, "image/jpeg")}

    def identify(self) -> None:
        with self.client.post(
            "/identify",
            files=self._image(),
            data={"top_k": "10"},
            name="/identify",
            catch_response=True,
        ) as r:
            faces = r.json().get("faces", []) if r.status_code == 200 else []
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            elif not faces or not _identified(faces[0]):
                r.failure("the probe was not identified as its own identity")

    def verify(self) -> None:
        with self.client.post(
            "/verify",
            files=self._image(),
            data={"identity_id": IDENTITY},
            name="/verify",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            elif not r.json().get("match"):
                r.failure("the probe did not verify against its identity")

    def enrol(self) -> None:
        created = self.client.post(
            "/identities", json={"name": f"load-{random.getrandbits(32):08x}"}, name="/identities"
        )
        if created.status_code != 201:
            return
        identity_id = created.json()["id"]
        self.client.post(
            f"/identities/{identity_id}/faces",
            files=self._image(),
            name="/identities/{id}/faces",
        )
        self.client.delete(f"/identities/{identity_id}", name="/identities/{id}")

    def cross_replica(self) -> None:
        """Enrol through replica A, identify through B; delete through B, identify through A."""
        a, b = random.sample(HOSTS, 2)
        created = self.client.post(
            f"{a}/identities",
            json={"name": f"x-{random.getrandbits(32):08x}"},
            name="A /identities",
        )
        if created.status_code != 201:
            return
        identity_id = created.json()["id"]
        added = self.client.post(
            f"{a}/identities/{identity_id}/faces", files=self._image(), name="A /faces"
        )
        if added.status_code != 201:
            self.client.delete(f"{a}/identities/{identity_id}", name="A /identities/{id}")
            return
        with self.client.post(
            f"{b}/identify",
            files=self._image(),
            data={"top_k": "50"},
            name="B /identify",
            catch_response=True,
        ) as r:
            found = (
                [c["identity_id"] for c in r.json()["faces"][0]["candidates"]]
                if (r.status_code == 200 and r.json().get("faces"))
                else []
            )
            if identity_id not in found:
                r.failure("an enrolment acknowledged by replica A was not found through B")
        deleted = self.client.delete(f"{b}/identities/{identity_id}", name="B /identities/{id}")
        if deleted.status_code != 204:
            return
        with self.client.post(
            f"{a}/identify",
            files=self._image(),
            data={"top_k": "50"},
            name="A /identify",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
            elif any(
                c["identity_id"] == identity_id
                for f in r.json().get("faces", [])
                for c in f["candidates"]
            ):
                r.failure("an identity deleted through replica B was still found through A")

    @task
    def scenario(self) -> None:
        if SCENARIO == "replicas":
            self.cross_replica()
        elif SCENARIO == "identify":
            self.identify()
        elif SCENARIO == "verify":
            self.verify()
        else:
            roll = random.random()
            if roll < 0.7:
                self.identify()
            elif roll < 0.9:
                self.verify()
            else:
                self.enrol()
