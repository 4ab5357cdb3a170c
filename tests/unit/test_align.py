"""Alignment equals insightface's ``norm_crop`` and maps landmarks onto the template."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.errors import InvalidImage
from service.vision.align import (
    ARCFACE_TEMPLATE,
    align_faces,
    as_aligned_crop,
    similarity_transform,
    template_for,
)
from service.vision.faces import DetectedFace
from tests.helpers import assert_matches_norm_crop


def _face(landmarks: np.ndarray) -> DetectedFace:
    lm = landmarks.astype(np.float32)
    box = np.array([*lm.min(axis=0) - 20, *lm.max(axis=0) + 20], dtype=np.float32)
    return DetectedFace(bbox=box, score=0.99, landmarks=lm)


def _random_landmarks(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """The template under a random similarity transform, plus landmark noise."""
    angle = rng.uniform(-0.6, 0.6)
    scale = rng.uniform(0.5, 3.0)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = rng.uniform([100, 100], [width - 100, height - 100])
    points = (ARCFACE_TEMPLATE - 56) @ rot.T + centre
    return points + rng.normal(0, 2.0, points.shape)


def test_the_template_maps_onto_itself() -> None:
    matrix = similarity_transform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_a_known_similarity_is_recovered_exactly() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = ARCFACE_TEMPLATE @ rot.T + shift
    np.testing.assert_allclose(similarity_transform(ARCFACE_TEMPLATE, dst)[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(similarity_transform(ARCFACE_TEMPLATE, dst)[:, 2], shift, atol=1e-9)


def test_matches_the_least_squares_estimate_of_scikit_image() -> None:
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(0)
    for _ in range(50):
        src = _random_landmarks(rng, 800, 600)
        ref = SimilarityTransform()
        ref.estimate(src, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(
            similarity_transform(src, ARCFACE_TEMPLATE), ref.params[:2], atol=1e-9
        )


def test_crops_equal_insightface_norm_crop(insightface_images: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(insightface_images / "t1.jpg")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(1)
    faces = [_face(_random_landmarks(rng, image.shape[1], image.shape[0])) for _ in range(40)]
    assert_matches_norm_crop(image, [f.landmarks for f in faces], align_faces(image, faces))


@pytest.mark.parametrize("size", [112, 224, 128])
def test_template_scales_like_insightface(size: int) -> None:
    from insightface.utils.face_align import arcface_dst, estimate_norm

    matrix = estimate_norm(arcface_dst.copy() * 1.0, image_size=size)
    np.testing.assert_allclose(
        similarity_transform(ARCFACE_TEMPLATE, template_for(size)), matrix, atol=1e-4
    )


def test_aligned_mode_accepts_only_the_crop_size() -> None:
    crop = np.zeros((112, 112, 3), np.uint8)
    assert as_aligned_crop(crop).shape == (1, 112, 112, 3)
    with pytest.raises(InvalidImage, match="112×112"):
        as_aligned_crop(np.zeros((100, 112, 3), np.uint8))
