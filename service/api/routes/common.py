"""Small conversions shared by the routes."""

from __future__ import annotations

from typing import TypeVar

from service.api.schemas import FaceBox
from service.recognition.pipeline import Face

F = TypeVar("F", bound=FaceBox)


def face_fields(face: Face) -> dict[str, object]:
    return {
        "box": [round(float(v), 2) for v in face.bbox],
        "score": round(float(face.score), 5),
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
    }
