"""What only a shared Milvus has to get right: replicas writing at once, and migration.

The Milvus here is Milvus Lite's gRPC server in its own process (the same client protocol as a
Milvus standalone server); each "replica" is its own client connection to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.helpers import need_milvus

need_milvus()

from service.errors import Conflict  # noqa: E402
from service.gallery.gallery import FaissGallery  # noqa: E402
from service.gallery.migrate import migrate  # noqa: E402
from service.gallery.milvus import MilvusGallery  # noqa: E402
from service.gallery.store import feature_centre  # noqa: E402
from tests.servers import milvus_lite_server  # noqa: E402

D = 32


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with milvus_lite_server(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri


def test_two_replicas_enrolling_one_identity_at_once_leave_the_mean_of_all(
    milvus_uri: str,
) -> None:
    replicas = [MilvusGallery(milvus_uri, "r18:abc", D, prefix="race") for _ in range(2)]
    ident = replicas[0].create_identity("ada", None, {})
    vectors = _unit(16, 0)
    barrier = threading.Barrier(2)

    def enrol(replica: MilvusGallery, part: np.ndarray) -> None:
        barrier.wait()
        for v in part:  # one face per call, interleaving with the other replica
            replica.add_faces(ident.id, v[None], [(0.99, 100.0, 100.0)])

    threads = [threading.Thread(target=enrol, args=(replicas[i], vectors[i::2])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for replica in replicas:
        assert replica.get_identity(ident.id).face_count == 16
        np.testing.assert_allclose(replica.template(ident.id), feature_centre(vectors), atol=1e-5)
        replica.close()


def test_one_external_id_created_on_two_replicas_at_once_is_kept_once(milvus_uri: str) -> None:
    replicas = [MilvusGallery(milvus_uri, "r18:abc", D, prefix="unique") for _ in range(2)]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def create(replica: MilvusGallery) -> None:
        barrier.wait()
        try:
            outcomes.append(replica.create_identity("ada", "emp-7", {}).id)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=create, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    survivors = [o for o in outcomes if o != "conflict"]
    owner = replicas[1].identity_by_external_id("emp-7")
    assert owner is not None and owner.id in survivors
    assert replicas[0].counts()["identities"] == 1
    for replica in replicas:
        replica.close()


def _fill(gallery: FaissGallery) -> None:
    rng = np.random.default_rng(3)
    for i in range(40):
        ident = gallery.create_identity(f"p{i}", f"ext-{i}" if i % 2 else None, {"i": i})
        n = int(rng.integers(0, 4))  # some identities have no face yet
        if n:
            gallery.add_faces(ident.id, _unit(n, 100 + i), [(0.9, 80.0 + i, 90.0)] * n)


def test_migration_round_trip_keeps_every_identity_face_and_template(
    tmp_path: Path, milvus_uri: str
) -> None:
    source = FaissGallery(tmp_path / "a", "r18:abc", D)
    _fill(source)
    milvus = MilvusGallery(milvus_uri, "r18:abc", D, prefix="migrated")
    there = migrate(source, milvus, sample=40)
    assert there.ok and there.copied == 40 and there.sampled == 40
    assert there.source_counts["faces"] == there.target_counts["faces"] > 0

    back = FaissGallery(tmp_path / "b", "r18:abc", D)
    home = migrate(milvus, back, sample=40)
    assert home.ok and home.copied == 40
    for key in ("identities", "searchable", "faces"):
        assert source.counts()[key] == milvus.counts()[key] == back.counts()[key]
    queries = _unit(5, 9)
    assert [[m.identity_id for m in r] for r in source.search(queries, 5)] == [
        [m.identity_id for m in r] for r in back.search(queries, 5)
    ]
    # a second run copies nothing and still checks out (resumable)
    again = migrate(source, milvus)
    assert again.ok and again.copied == 0 and again.already_there == 40
    for g in (source, milvus, back):
        g.close()


def test_gallery_migrate_command(tmp_path: Path, milvus_uri: str) -> None:
    from service.cli import cli

    source = FaissGallery(tmp_path, "r18:abc", D)
    _fill(source)
    source.close()
    env = {
        "FACEREC_DATA_DIR": str(tmp_path),
        "FACEREC_MILVUS_URI": milvus_uri,
        "FACEREC_MILVUS_PREFIX": "cli",
    }
    result = CliRunner().invoke(
        cli, ["gallery", "migrate", "--from", "faiss", "--to", "milvus"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "copied 40" in result.output and "40/40 identities equal" in result.output
    assert "MISMATCH" not in result.output
    stats = CliRunner().invoke(cli, ["gallery", "stats", "--backend", "milvus"], env=env)
    assert stats.exit_code == 0 and "identities" in stats.output
    same = CliRunner().invoke(
        cli, ["gallery", "migrate", "--from", "faiss", "--to", "faiss"], env=env
    )
    assert same.exit_code == 2
