"""The HTTP API in-process (FastAPI's TestClient runs the real app, models and gallery)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import ApiKey, Settings
from tests.helpers import b64, need_milvus

RECOGNIZE = "r" * 24
MANAGE = "m" * 24
BOTH = "b" * 24


@pytest.fixture(scope="module", params=["faiss", "milvus"])
def client(
    test_pack: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """The app on each gallery backend (milvus: a Milvus Lite file in the data folder)."""
    if request.param == "milvus":
        need_milvus()
    settings = Settings(
        pack=test_pack,
        data_dir=tmp_path_factory.mktemp("data"),
        gallery_backend=request.param,
        device="cpu",
        det_threshold=0.7,
        max_image_bytes=2 * 2**20,
        max_body_bytes=4 * 2**20,
        api_keys=[
            ApiKey(name="app", key=RECOGNIZE, scopes=["recognize"]),
            ApiKey(name="admin", key=MANAGE, scopes=["manage"]),
            ApiKey(name="both", key=BOTH, scopes=["recognize", "manage"]),
        ],
    )
    with TestClient(create_app(settings)) as c:
        c.headers["X-API-Key"] = BOTH
        yield c


@pytest.fixture(scope="module")
def t1(insightface_images: Path) -> bytes:
    return (insightface_images / "t1.jpg").read_bytes()


def test_health_info_and_openapi(client: TestClient) -> None:
    assert client.get("/health/live").json()["status"] == "ok"
    assert client.get("/health/ready").status_code == 200
    info = client.get("/info").json()
    assert (
        info["untrained"] is True and info["embedding_size"] == 512 and info["auth"] == "api_keys"
    )
    assert info["detector"] == "yunet+onet" and "Apache-2.0" in info["detector_license"]
    assert info["detector_license"] in info["license"]
    spec = client.get("/openapi.json").json()
    for path in (
        "/verify",
        "/identify",
        "/embed",
        "/identities",
        "/identities/{identity_id}/faces",
    ):
        assert path in spec["paths"]
    body = spec["paths"]["/verify"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)


def test_embed_multipart_and_json_agree(client: TestClient, t1: bytes) -> None:
    a = client.post("/embed", files={"image": ("t1.jpg", t1, "image/jpeg")}).json()
    b = client.post("/embed", json={"image": b64(t1), "max_faces": 2}).json()
    assert a["faces_found"] == 6 and b["faces_found"] == 2
    assert a["faces"][0]["embedding"] == b["faces"][0]["embedding"]
    assert len(a["faces"][0]["embedding"]) == 512 and len(a["faces"][0]["landmarks"]) == 5


def test_enrol_identify_verify_and_unknown(client: TestClient, t1: bytes) -> None:
    faces = client.post("/embed", json={"image": b64(t1)}).json()["faces"]
    ids = []
    for i, face in enumerate(faces[:5]):
        ident = client.post("/identities", json={"name": f"p{i}", "metadata": {"i": i}})
        assert ident.status_code == 201
        identity_id = ident.json()["id"]
        added = client.post(
            f"/identities/{identity_id}/faces",
            files={"image": ("t1.jpg", t1, "image/jpeg")},
            data={"box": json.dumps(face["box"])},
        )
        assert added.status_code == 201, added.json()
        assert added.json()["faces"][0]["score"] > 0.8  # YuNet scores t1's faces 0.88–0.93
        ids.append(identity_id)
    result = client.post("/identify", json={"image": b64(t1), "top_k": 3}).json()
    assert result["faces_found"] == 6
    for face, identity_id in zip(result["faces"][:5], ids, strict=True):
        assert face["candidates"][0]["identity_id"] == identity_id
        assert face["match"]["identity_id"] == identity_id
    # the sixth face was never enrolled: an untrained model still puts different faces far
    # below the pack's 0.95 (see service/models/testpack.py), so it must come back unknown
    assert result["faces"][5]["match"] is None
    verdict = client.post(
        "/verify", json={"image": b64(t1), "identity_id": ids[0], "face": "best"}
    ).json()
    assert verdict["match"] is True and verdict["similarity"] > 0.99
    other = client.post("/verify", json={"image": b64(t1), "identity_id": ids[1], "face": "best"})
    assert other.json()["match"] is False

    assert client.delete(f"/identities/{ids[0]}").status_code == 204
    again = client.post("/identify", json={"image": b64(t1)}).json()
    assert all(c["identity_id"] != ids[0] for f in again["faces"] for c in f["candidates"])
    assert client.get(f"/identities/{ids[0]}").status_code == 404


def test_identity_crud_and_pagination(client: TestClient) -> None:
    created = client.post("/identities", json={"name": "x", "external_id": "ext-1"}).json()
    dup = client.post("/identities", json={"name": "y", "external_id": "ext-1"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"
    patched = client.patch(f"/identities/{created['id']}", json={"name": "x2"}).json()
    assert patched["name"] == "x2" and patched["external_id"] == "ext-1"
    page = client.get("/identities", params={"limit": 2, "offset": 0}).json()
    assert len(page["items"]) <= 2 and page["total"] >= 1
    assert client.get("/identities", params={"limit": 0}).status_code == 422


def test_enrolment_needs_exactly_one_face(client: TestClient, t1: bytes) -> None:
    ident = client.post("/identities", json={"name": "crowd"}).json()
    many = client.post(
        f"/identities/{ident['id']}/faces", files={"image": ("t1.jpg", t1, "image/jpeg")}
    )
    assert many.status_code == 422 and many.json()["error"]["code"] == "too_many_faces"
    blank = io.BytesIO()
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank, "PNG")
    none = client.post(f"/identities/{ident['id']}/faces", json={"image": [b64(blank.getvalue())]})
    assert none.status_code == 422 and none.json()["error"]["code"] == "no_face"
    assert client.get(f"/identities/{ident['id']}").json()["face_count"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"image": b64(b"")}, 400, "invalid_image"),
        ({"image": b64(b"not an image at all")}, 400, "invalid_image"),
        ({"image": "***"}, 400, "invalid_base64"),
        ({"image": b64(b"GIF89a" + b"\0" * 64)}, 400, "invalid_image"),
        ({"top_k": 5}, 422, "invalid_request"),
        ({"image": "aGk=", "top_k": 500}, 422, "invalid_request"),
        ({"image": "aGk=", "surprise": 1}, 422, "invalid_request"),
    ],
)
def test_bad_requests_get_stable_codes(
    client: TestClient, body: dict, status: int, code: str
) -> None:
    response = client.post("/identify", json=body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code


def test_gif_is_unsupported_and_large_bodies_are_refused(client: TestClient) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    r = client.post("/embed", files={"image": ("a.gif", gif.getvalue(), "image/gif")})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_format"
    huge = client.post(
        "/embed", content=b"x" * (5 * 2**20), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert client.get("/health/ready").status_code == 200  # still serving


def test_a_streamed_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    """No Content-Length (chunked): the limit is enforced while the body arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 2**20

    r = client.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_keys_and_scopes(client: TestClient, t1: bytes) -> None:
    anonymous = client.post("/identities", json={"name": "z"}, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    wrong = client.post("/identities", json={"name": "z"}, headers={"X-API-Key": "w" * 24})
    assert wrong.status_code == 401
    scoped = client.post("/identities", json={"name": "z"}, headers={"X-API-Key": RECOGNIZE})
    assert scoped.status_code == 403 and scoped.json()["error"]["code"] == "forbidden"
    assert (
        client.post("/identities", json={"name": "z"}, headers={"X-API-Key": MANAGE}).status_code
        == 201
    )
    denied = client.post("/embed", json={"image": b64(t1)}, headers={"X-API-Key": MANAGE})
    assert denied.status_code == 403
    assert client.get("/health/live", headers={"X-API-Key": ""}).status_code == 200


def test_metrics_count_requests_and_batches(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'facerec_request_seconds_count{method="POST",route="/identify"' in text
    assert 'facerec_batch_size_count{model="embed"}' in text
    assert "facerec_gallery_identities" in text
