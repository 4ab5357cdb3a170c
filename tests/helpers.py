"""What test modules share across folders: encodings, test images and data, the reliability
suite's mode, and reads of the gallery database behind the service's back. Server processes
are in :mod:`tests.servers`; fixtures in the ``conftest.py`` files."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

__all__ = [
    "LONG",
    "T1_BOXES",
    "b64",
    "make_face_folder",
    "need_milvus",
    "noise_crops",
    "one_face_jpeg",
    "scale",
    "sqlite_count",
    "sqlite_rows",
]

# ---------- modes ----------

# the reliability suite: bounded in CI, longer with FACEREC_RELIABILITY_LONG=1
LONG = os.environ.get("FACEREC_RELIABILITY_LONG", "") not in ("", "0")


def scale(ci: int, long: int) -> int:
    """How many cases, cycles or requests a test runs in this mode."""
    return long if LONG else ci


def need_milvus() -> None:
    """Skip, saying why, where the ``milvus`` extra (pymilvus, milvus-lite) is not installed."""
    pytest.importorskip("pymilvus", reason="the milvus extra (pymilvus) is not installed")
    pytest.importorskip("milvus_lite", reason="the milvus extra (milvus-lite) is not installed")


# ---------- encodings and images ----------


def b64(data: bytes) -> str:
    """``data`` as the base64 text a JSON request carries."""
    return base64.b64encode(data).decode()


# the six faces of insightface's t1.jpg (x1, y1, x2, y2), as the test pack's detector sees them
T1_BOXES = [
    (908, 62, 1013, 200),
    (54, 262, 171, 395),
    (270, 150, 374, 268),
    (741, 342, 842, 475),
    (465, 264, 571, 411),
    (1134, 276, 1226, 400),
]


def one_face_jpeg(insightface_images: Path, pack: Path | None = None) -> bytes:
    """A JPEG holding one face: a face of t1.jpg with a margin around it, no other face.
    With ``pack``, its detector (at the test servers' threshold, 0.7) is asked to agree."""
    image = cv2.imread(str(insightface_images / "t1.jpg"))
    assert image is not None
    ok, jpg = cv2.imencode(".jpg", image[0:336, 804:1116])
    assert ok
    if pack is not None:
        from service.recognition.pipeline import Pipeline
        from service.vision.detectors.base import DetectorConfig

        pipeline = Pipeline.from_pack(pack, device="cpu", detector=DetectorConfig(threshold=0.7))
        assert len(pipeline.faces(jpg.tobytes())) == 1
    return jpg.tobytes()


def noise_crops(n: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct 112×112 PNG "aligned crops" of random noise. The untrained recognizer
    gives them nearly orthogonal embeddings (pairwise cosine below 0.3), so a search with
    one of them finds its own identity first: a cheap, exact probe of the index."""
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        ok, png = cv2.imencode(".png", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
        assert ok
        crops.append(png.tobytes())
    return crops


def make_face_folder(root: Path, classes: int = 3, per_class: int = 4, seed: int = 0) -> Path:
    """``root/id<k>/<i>.png``: 112×112 crops, a noisy class-specific pattern per identity."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        base = rng.integers(0, 256, (112, 112, 3))
        for i in range(per_class):
            noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            (root / f"id{k}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(noisy).save(root / f"id{k}" / f"{i}.png")
    return root


# ---------- the gallery database, read directly ----------


def sqlite_rows(data: Path, query: str) -> list[tuple[object, ...]]:
    """Rows of ``query`` on the gallery database, read directly (not through the service)."""
    db = sqlite3.connect(f"file:{(data / 'gallery.sqlite3').resolve()}?mode=ro", uri=True)
    try:
        return list(db.execute(query).fetchall())
    finally:
        db.close()


def sqlite_count(data: Path, query: str) -> int:
    """The single integer ``query`` (a ``SELECT COUNT(*) ...``) gives on the gallery database."""
    (value,) = sqlite_rows(data, query)[0]
    assert isinstance(value, int)
    return value


def assert_matches_norm_crop(
    image: np.ndarray, landmarks: list[np.ndarray], crops: np.ndarray
) -> None:
    """Our 112×112 crops against insightface's ``norm_crop`` for the same landmarks.

    insightface holds the ArcFace template in float32, so its similarity matrix differs from
    our float64 least-squares one by up to about 2e-4. OpenCV 5 then gives crops within one
    grey level; OpenCV 4 samples on a 1/32-pixel fixed-point grid, where such a difference
    moves a few samples across a grid step: two grey levels on about 1 value in 10^5. The
    bounds hold on both, and a wrong template, order or transform breaks all three."""
    from insightface.utils.face_align import estimate_norm, norm_crop

    from service.vision.align import ARCFACE_TEMPLATE, similarity_transform

    over_one = 0
    for points, crop in zip(landmarks, crops, strict=True):
        ours = similarity_transform(np.asarray(points, np.float64), ARCFACE_TEMPLATE)
        assert np.abs(ours - estimate_norm(points)).max() < 5e-4
        diff = np.abs(crop.astype(int) - norm_crop(image, points).astype(int))
        assert diff.max() <= 2
        over_one += int((diff > 1).sum())
    assert over_one <= max(1, crops.size // 50_000), over_one
