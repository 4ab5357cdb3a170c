"""Open the gallery backend the settings name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.gallery.types import Gallery

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["milvus_uri", "open_gallery"]


def milvus_uri(settings: Settings) -> str:
    """The Milvus URI: the setting, else a Milvus Lite folder in the data directory."""
    return settings.milvus_uri or str(settings.data_dir / "gallery.milvus.db")


def open_gallery(
    settings: Settings, model_id: str, embedding_size: int, backend: str | None = None
) -> Gallery:
    """The ``faiss`` (default) or ``milvus`` gallery; ``backend`` overrides the setting."""
    chosen = backend or settings.gallery_backend
    if chosen == "faiss":
        from service.gallery.gallery import FaissGallery

        return FaissGallery(settings.data_dir, model_id, embedding_size, settings.index_device)
    if chosen == "milvus":
        from service.gallery.milvus import MilvusGallery

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        return MilvusGallery(
            milvus_uri(settings),
            model_id,
            embedding_size,
            token=token,
            prefix=settings.milvus_prefix,
            index_type=settings.milvus_index,
            index_params=settings.milvus_index_params,
            search_params=settings.milvus_search_params,
        )
    raise ValueError(f"unknown gallery backend {chosen!r}: faiss or milvus")
