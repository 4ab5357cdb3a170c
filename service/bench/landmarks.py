"""``facerec bench landmarks``: how far landmarks move when the photo moves a little.

A face's landmarks should follow the image exactly: crop ``(dx, dy)`` pixels off the top-left
and every point should move by ``(−dx, −dy)``; resize the photo by ``s`` and every point
should land at ``(p + 0.5) · s − 0.5``. What they do instead is jitter, and aligned crops
(and embeddings) jitter with them. Reported per detector: the error in pixels (mean over a
face's five points; the largest single point) and relative to the face's eye distance, over
every face, shift and scale, and the time per photo. Faces are paired with the unmoved
photo's by the nearest box centre.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from service.vision.detectors.base import Detector, RGBImage
from service.vision.faces import DetectedFace

SHIFTS = ((1, 0), (0, 1), (1, 1), (2, 0), (0, 3), (4, 4), (5, 2), (8, 0), (0, 8), (11, 7), (16, 0))
SCALES = (0.95, 1.05)


def _nearest(face: DetectedFace, others: Sequence[DetectedFace]) -> DetectedFace | None:
    centre = (face.bbox[:2] + face.bbox[2:]) / 2
    return min(
        others,
        key=lambda g: float(np.linalg.norm((g.bbox[:2] + g.bbox[2:]) / 2 - centre)),
        default=None,
    )


def _errors(
    expected: np.ndarray, got: DetectedFace | None, eye: float, limit: float
) -> tuple[float, float, float] | None:
    if got is None:
        return None
    distance = np.linalg.norm(got.landmarks - expected, axis=1)
    if float(distance.mean()) > limit:  # paired with another face: not a jitter
        return None
    return float(distance.mean()), float(distance.max()), eye


def measure(
    detector: Detector,
    images: Sequence[RGBImage],
    shifts: Sequence[tuple[int, int]] = SHIFTS,
    scales: Sequence[float] = SCALES,
) -> dict[str, Any]:
    shifted: list[tuple[float, float, float]] = []
    rescaled: list[tuple[float, float, float]] = []
    missed = 0
    started = time.perf_counter()
    calls = 0
    for image in images:
        base = detector.detect([image])[0]
        calls += 1
        for dx, dy in shifts:
            moved = detector.detect([np.ascontiguousarray(image[dy:, dx:])])[0]
            calls += 1
            for face in base:
                eye = float(np.linalg.norm(face.landmarks[0] - face.landmarks[1]))
                expected = face.landmarks - np.array([dx, dy], np.float32)
                probe = DetectedFace(
                    face.bbox - np.array([dx, dy, dx, dy], np.float32), 0.0, expected
                )
                found = _errors(expected, _nearest(probe, moved), eye, eye)
                missed += found is None
                if found is not None:
                    shifted.append(found)
        height, width = image.shape[:2]
        for s in scales:
            size = (round(width * s), round(height * s))
            resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            found_faces = detector.detect([np.ascontiguousarray(resized)])[0]
            calls += 1
            sx, sy = size[0] / width, size[1] / height
            for face in base:
                expected = (face.landmarks + 0.5) * np.array([sx, sy], np.float32) - 0.5
                eye = float(np.linalg.norm(expected[0] - expected[1]))
                box = face.bbox * np.array([sx, sy, sx, sy], np.float32)
                found = _errors(
                    expected, _nearest(DetectedFace(box, 0.0, expected), found_faces), eye, eye
                )
                missed += found is None
                if found is not None:
                    rescaled.append(found)
    elapsed = time.perf_counter() - started

    def summary(rows: list[tuple[float, float, float]]) -> dict[str, float]:
        a = np.asarray(rows) if rows else np.full((1, 3), np.nan)
        return {
            "faces": len(rows),
            "mean_px": round(float(a[:, 0].mean()), 2),
            "p95_px": round(float(np.percentile(a[:, 1], 95)), 2),
            "max_px": round(float(a[:, 1].max()), 2),
            "mean_of_eye_distance": round(float((a[:, 0] / a[:, 2]).mean()), 3),
            "max_of_eye_distance": round(float((a[:, 1] / a[:, 2]).max()), 3),
        }

    return {
        "detector": detector.name,
        "shifts": summary(shifted),
        "rescales": summary(rescaled),
        "unpaired": missed,
        "ms_per_photo": round(elapsed / max(calls, 1) * 1000, 1),
    }
