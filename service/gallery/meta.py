"""What a gallery was made with (schema version, recognizer, embedding size), and the one
check both backends make at opening: embeddings of different recognizers are not comparable."""

from __future__ import annotations

from collections.abc import Mapping

from service.errors import GalleryMismatch

__all__ = ["check_meta", "gallery_meta"]


def gallery_meta(schema_version: int, model_id: str, embedding_size: int) -> dict[str, str]:
    """The meta a gallery stores when it is created, as text."""
    return {
        "schema_version": str(schema_version),
        "model_id": model_id,
        "embedding_size": str(embedding_size),
    }


def check_meta(
    stored: Mapping[str, str], wanted: Mapping[str, str], gallery: str, elsewhere: str
) -> None:
    """Raise ``GalleryMismatch`` unless the ``stored`` meta is the ``wanted`` one; ``gallery``
    names it in the message and ``elsewhere`` says where else a new one can go."""
    for key, value in wanted.items():
        if stored.get(key) != value:
            raise GalleryMismatch(
                f"gallery {gallery} was made with {key} {stored.get(key)!r}, the service runs "
                f"{value!r}: embeddings of different recognizers are not comparable. Use the "
                f"model pack it was made with, or {elsewhere}."
            )
