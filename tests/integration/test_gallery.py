"""The gallery on both backends, real ones: SQLite + FAISS, and Milvus (Milvus Lite, the same
engine API as a Milvus server): templates, deletes for good, restarts, concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from service.errors import Conflict, EmptyIdentity, FaceNotFound, GalleryMismatch, IdentityNotFound
from service.gallery.gallery import FaissGallery
from service.gallery.store import feature_centre
from service.gallery.types import Gallery
from tests.helpers import need_milvus

D = 32


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _q(n: int) -> list[tuple[float, float, float]]:
    return [(0.99, 100.0, 120.0)] * n


Opener = Callable[..., Gallery]


@pytest.fixture(params=["faiss", "milvus"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the backend's gallery at one place in tmp_path (again after a close: a restart)."""

    def open_(model_id: str = "r18:abc", size: int = D) -> Gallery:
        if request.param == "faiss":
            return FaissGallery(tmp_path, model_id, size)
        need_milvus()
        from service.gallery.milvus import MilvusGallery

        return MilvusGallery(str(tmp_path / "gallery.milvus.db"), model_id, size)

    return open_


@pytest.fixture
def gallery(opener: Opener) -> Iterator[Gallery]:
    g = opener()
    yield g
    g.close()


def test_template_is_the_normalised_mean_of_normalised_faces(gallery: Gallery) -> None:
    ident = gallery.create_identity("ada", None, {})
    faces = np.array([[3.0, 0.0] + [0.0] * (D - 2), [0.0, 0.5] + [0.0] * (D - 2)], np.float32)
    gallery.add_faces(ident.id, faces, _q(2))
    by_hand = np.zeros(D, np.float32)
    by_hand[:2] = [1 / np.sqrt(2), 1 / np.sqrt(2)]
    np.testing.assert_allclose(gallery.template(ident.id), by_hand, atol=1e-6)
    np.testing.assert_allclose(feature_centre(faces), by_hand, atol=1e-6)
    assert gallery.get_identity(ident.id).face_count == 2


def test_identity_lifecycle(gallery: Gallery) -> None:
    a = gallery.create_identity("ada", "emp-1", {"team": "x"})
    gallery.create_identity("bob", None, {})
    with pytest.raises(Conflict):
        gallery.create_identity("eve", "emp-1", {})
    items, total = gallery.list_identities(limit=1, offset=1)
    assert total == 2 and [i.name for i in items] == ["bob"]
    renamed = gallery.update_identity(a.id, {"name": "Ada L.", "metadata": {"team": "y"}})
    assert renamed.name == "Ada L." and renamed.metadata == {"team": "y"}
    assert renamed.updated_at >= a.updated_at
    with pytest.raises(IdentityNotFound):
        gallery.get_identity("nope")
    with pytest.raises(EmptyIdentity):
        gallery.template(a.id)


def test_search_finds_each_identity_first(gallery: Gallery) -> None:
    vectors = _unit(50, 0)
    ids = []
    for i, v in enumerate(vectors):
        ident = gallery.create_identity(f"p{i}", None, {})
        gallery.add_faces(ident.id, v[None], _q(1))
        ids.append(ident.id)
    results = gallery.search(vectors, 3)
    assert [r[0].identity_id for r in results] == ids
    assert all(abs(r[0].similarity - 1.0) < 1e-5 for r in results)


def test_face_deletion_recomputes_and_empty_identities_are_unsearchable(
    gallery: Gallery,
) -> None:
    ident = gallery.create_identity("ada", None, {})
    vectors = _unit(2, 1)
    rows = gallery.add_faces(ident.id, vectors, _q(2))
    gallery.delete_face(ident.id, rows[0].id)
    np.testing.assert_allclose(gallery.template(ident.id), vectors[1], atol=1e-6)
    with pytest.raises(FaceNotFound):
        gallery.delete_face(ident.id, rows[0].id)
    gallery.delete_face(ident.id, rows[1].id)
    assert gallery.size() == 0 and gallery.search(vectors, 5) == [[], []]


def test_delete_is_for_good_also_after_restart(opener: Opener, tmp_path: Path) -> None:
    gallery = opener()
    vectors = _unit(10, 2)
    ids = []
    for i, v in enumerate(vectors):
        ident = gallery.create_identity(f"p{i}", None, {})
        gallery.add_faces(ident.id, v[None], _q(1))
        ids.append(ident.id)
    gallery.delete_identity(ids[3])
    before = gallery.search(vectors, 5)
    assert all(m.identity_id != ids[3] for r in gallery.search(vectors, 10) for m in r)
    gallery.close()
    reopened = opener()
    counts = reopened.counts()
    assert counts["indexed"] == counts["searchable"] == 9 and counts["faces"] == 9
    assert all(m.identity_id != ids[3] for r in reopened.search(vectors, 10) for m in r)
    # the index rebuilt at opening answers as the one before the restart: same top-k, in the
    # same order, with the same similarities (a round trip of the index through its store)
    after = reopened.search(vectors, 5)
    assert [[m.identity_id for m in r] for r in after] == [
        [m.identity_id for m in r] for r in before
    ]
    assert [[m.name for m in r] for r in after] == [[m.name for m in r] for r in before]
    np.testing.assert_allclose(
        [[m.similarity for m in r] for r in after],
        [[m.similarity for m in r] for r in before],
        atol=1e-6,
    )
    with pytest.raises(IdentityNotFound):
        reopened.get_identity(ids[3])
    if not isinstance(reopened, FaissGallery):
        return
    import sqlite3

    db = sqlite3.connect(tmp_path / "gallery.sqlite3")
    assert (
        db.execute(
            "SELECT COUNT(*) FROM faces f JOIN identities i ON f.identity_seq = i.seq "
            "WHERE i.id = ?",
            (ids[3],),
        ).fetchone()[0]
        == 0
    )


def test_a_gallery_of_another_recognizer_is_refused(opener: Opener) -> None:
    opener().close()
    with pytest.raises(GalleryMismatch, match="model_id"):
        opener("r100:def", D)
    with pytest.raises(GalleryMismatch, match="embedding_size"):
        opener("r18:abc", D * 2)


def test_a_failed_transaction_leaves_nothing(gallery: Gallery) -> None:
    ident = gallery.create_identity("ada", None, {})
    bad = _unit(2, 3)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError):
        gallery.add_faces(ident.id, bad, _q(2))
    assert gallery.get_identity(ident.id).face_count == 0 and gallery.size() == 0


def test_bulk_enrol_is_searchable(gallery: Gallery) -> None:
    n = 20_000 if isinstance(gallery, FaissGallery) else 4_000
    vectors = _unit(n, 4)
    started = time.perf_counter()
    assert gallery.bulk_enrol([f"n{i}" for i in range(len(vectors))], vectors) == n
    elapsed = time.perf_counter() - started
    assert gallery.size() == n
    top = gallery.search(vectors[123:124], 1)[0][0]
    assert top.name == "n123"
    print(f"bulk enrol: {len(vectors) / elapsed:.0f} identities/s")


def test_no_identity_is_returned_after_its_delete_was_acknowledged(gallery: Gallery) -> None:
    vectors = _unit(200, 5)
    ids = []
    for i, v in enumerate(vectors):
        ident = gallery.create_identity(f"p{i}", None, {})
        gallery.add_faces(ident.id, v[None], _q(1))
        ids.append(ident.id)
    deleted: dict[str, float] = {}
    violations: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            for row in gallery.search(vectors, 5):
                for match in row:
                    acked = deleted.get(match.identity_id)
                    if acked is not None and acked < started:
                        violations.append(match.identity_id)

    def writer() -> None:
        for i in range(0, 100):
            gallery.delete_identity(ids[i])
            deleted[ids[i]] = time.perf_counter()
            new = gallery.create_identity(f"new{i}", None, {})
            gallery.add_faces(new.id, vectors[i : i + 1], _q(1))

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    writer()
    stop.set()
    for t in threads:
        t.join()
    assert violations == []
    assert gallery.counts()["indexed"] == 200
