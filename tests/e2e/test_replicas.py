"""Two ``facerec serve`` processes sharing one Milvus: stateless replicas.

Milvus here is a Milvus Lite server process (``milvus-lite server``), reached over gRPC at an
``http://`` URI as a Milvus standalone server would be; each replica has its own empty data
folder, so whatever one sees of the other's writes came through Milvus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import b64, need_milvus
from tests.servers import milvus_lite_server, serving

need_milvus()


@pytest.fixture(scope="module")
def t1(insightface_images: Path) -> bytes:
    return (insightface_images / "t1.jpg").read_bytes()


def test_enrol_through_one_replica_identify_and_delete_through_the_other(
    test_pack: Path, tmp_path: Path, t1: bytes
) -> None:
    with milvus_lite_server(tmp_path / "milvus") as uri:
        env = {"FACEREC_GALLERY_BACKEND": "milvus", "FACEREC_MILVUS_URI": uri}
        with (
            serving(test_pack, tmp_path / "a", env) as replica_a,
            serving(test_pack, tmp_path / "b", env) as replica_b,
        ):
            a, b = replica_a.http, replica_b.http
            faces = a.post("/embed", json={"image": b64(t1)}).json()["faces"]
            ids = []
            for i, face in enumerate(faces[:3]):
                identity = a.post("/identities", json={"name": f"p{i}", "external_id": f"e{i}"})
                assert identity.status_code == 201, identity.text
                ids.append(identity.json()["id"])
                added = a.post(
                    f"/identities/{ids[-1]}/faces", json={"image": [b64(t1)], "box": face["box"]}
                )
                assert added.status_code == 201, added.text

            # B never saw these requests: what it finds, it found in Milvus
            assert b.get("/info").json()["gallery_size"] == 3
            found = b.post("/identify", json={"image": b64(t1)}).json()["faces"]
            assert [f["match"]["identity_id"] for f in found[:3]] == ids
            assert b.get(f"/identities/{ids[1]}").json()["name"] == "p1"

            assert b.delete(f"/identities/{ids[1]}").status_code == 204
            # A, asked right after B acknowledged the delete, no longer has it anywhere
            assert a.get(f"/identities/{ids[1]}").status_code == 404
            after = a.post("/identify", json={"image": b64(t1), "top_k": 10}).json()["faces"]
            assert all(c["identity_id"] != ids[1] for f in after for c in f["candidates"])
            assert a.get("/info").json()["gallery_size"] == 2

        # a replica started later sees everything
        with serving(test_pack, tmp_path / "c", env) as replica_c:
            c = replica_c.http
            listed = c.get("/identities").json()
            assert sorted(i["id"] for i in listed["items"]) == sorted([ids[0], ids[2]])
