"""The whole path on a real photo: decode → YuNet (O-Net landmarks) → align → r18 embed, against
insightface."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.recognition.pipeline import AsyncPipeline, Pipeline
from service.vision.align import align_faces
from service.vision.detectors.base import DetectorConfig
from tests.helpers import assert_matches_norm_crop


@pytest.fixture(scope="module")
def pipeline(test_pack: Path) -> Pipeline:
    return Pipeline.from_pack(test_pack, device="cpu", detector=DetectorConfig(threshold=0.7))


@pytest.fixture(scope="module")
def t1_bytes(insightface_images: Path) -> bytes:
    return (insightface_images / "t1.jpg").read_bytes()


def test_t1_gives_six_unit_embeddings_whose_crops_match_norm_crop(
    pipeline: Pipeline, t1_bytes: bytes
) -> None:
    image = pipeline.decode(t1_bytes)
    faces = pipeline.faces_in(image)
    assert len(faces) == 6
    norms = np.linalg.norm(np.stack([f.embedding for f in faces]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    detected = pipeline.detector.detect([image])[0]
    assert_matches_norm_crop(image, [f.landmarks for f in detected], align_faces(image, detected))
    cross = np.stack([f.embedding for f in faces]) @ np.stack([f.embedding for f in faces]).T
    np.fill_diagonal(cross, 0)
    assert cross.max() < 0.8  # different people stay apart even untrained (see testpack.py)


def test_embeddings_equal_insightface_arcfaceonnx_and_bgr_would_fail(
    pipeline: Pipeline, t1_bytes: bytes, test_pack: Path
) -> None:
    """insightface's path: BGR image, norm_crop, ArcFaceONNX.get (which swaps to RGB)."""
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    recognizer = next(test_pack.glob("r18_*.onnx"))
    reference = ArcFaceONNX(model_file=str(recognizer))
    bgr = cv2.imdecode(np.frombuffer(t1_bytes, np.uint8), cv2.IMREAD_COLOR)
    image = pipeline.decode(t1_bytes)
    detected = pipeline.detector.detect([image])[0]
    ours = pipeline.faces_in(image)
    for face, mine in zip(detected, ours, strict=True):
        theirs = reference.get(bgr, InsightFace(kps=face.landmarks))
        theirs = theirs / np.linalg.norm(theirs)
        assert float(mine.embedding @ theirs) >= 0.9999
        # the classic bug: the same crop fed in BGR order
        crop_bgr = align_faces(image, [face])[:, :, :, ::-1]
        swapped = pipeline.embedder.embed(np.ascontiguousarray(crop_bgr))[0]
        assert float(swapped @ theirs) < 0.999


def test_aligned_mode_embeds_a_crop_without_detection(
    pipeline: Pipeline, insightface_images: Path
) -> None:
    data = (insightface_images / "Tom_Hanks_54745.png").read_bytes()
    face = pipeline.aligned_face(data)
    crop = pipeline.decode(data)
    expected = pipeline.embedder.embed(crop[None])[0]
    assert float(face.embedding @ expected) > 0.99999


async def test_concurrent_requests_share_model_calls(
    pipeline: Pipeline, insightface_images: Path
) -> None:
    """32 concurrent single-face requests are served in fewer embedding calls than requests."""
    data = (insightface_images / "Tom_Hanks_54745.png").read_bytes()
    batched = AsyncPipeline(pipeline, embed_max_batch=64, embed_max_wait_ms=20)
    await batched.start()
    try:
        faces = await asyncio.gather(*(batched.aligned_face(data) for _ in range(32)))
    finally:
        await batched.stop()
    assert len(faces) == 32
    stats = batched.embed_batcher.stats
    assert stats.items == 32 and stats.calls < 32, stats.batch_sizes
    ref = faces[0].embedding
    assert all(float(f.embedding @ ref) > 0.99999 for f in faces)


async def test_a_bad_image_fails_only_its_own_request(
    pipeline: Pipeline, insightface_images: Path
) -> None:
    from service.errors import InvalidImage

    good = (insightface_images / "Tom_Hanks_54745.png").read_bytes()
    batched = AsyncPipeline(pipeline, embed_max_wait_ms=20)
    await batched.start()
    try:
        results = await asyncio.gather(
            batched.aligned_face(good),
            batched.aligned_face(b"not an image"),
            batched.aligned_face(good),
            return_exceptions=True,
        )
    finally:
        await batched.stop()
    assert isinstance(results[1], InvalidImage)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
