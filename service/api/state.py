"""What the routes reach through ``app.state.services``: built in ``create_app``, filled in
the lifespan; and the dependencies that hand its parts to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.api.auth import KeyRing, Manager
from service.api.metrics import Metrics
from service.audit import AuditLog
from service.errors import ModelNotReady
from service.gallery.types import Gallery
from service.recognition.changes import GalleryChanges
from service.recognition.usecases import Recognition
from service.settings import Settings

__all__ = [
    "AppGallery",
    "AppServices",
    "Changes",
    "ModelInfo",
    "ReadyRecognition",
    "Services",
]


@dataclass
class ModelInfo:
    """What /info reports about the loaded models."""

    pack: str
    detector: str
    detector_license: str
    license: str
    recognizer: str
    runtime: str
    device: str
    precision: str
    embedding_size: int
    threshold: float
    threshold_source: str
    untrained: bool


@dataclass
class Services:
    """One app's parts: the first four from ``create_app``, the rest once the lifespan has
    loaded the models and opened the gallery (``ready``)."""

    settings: Settings
    metrics: Metrics
    keyring: KeyRing
    audit: AuditLog
    recognition: Recognition | None = None
    gallery: Gallery | None = None
    model: ModelInfo | None = None
    ready: bool = False

    def require_recognition(self) -> Recognition:
        if self.recognition is None or not self.ready:
            raise ModelNotReady("models are still loading; retry shortly")
        return self.recognition

    def require_gallery(self) -> Gallery:
        if self.gallery is None or not self.ready:
            raise ModelNotReady("the gallery is still opening; retry shortly")
        return self.gallery

    def require_model(self) -> ModelInfo:
        if self.model is None:
            raise ModelNotReady("models are still loading; retry shortly")
        return self.model


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(_services)]


def _recognition(services: AppServices) -> Recognition:
    return services.require_recognition()


def _gallery(services: AppServices) -> Gallery:
    return services.require_gallery()


def _changes(services: AppServices, who: Manager) -> GalleryChanges:
    return GalleryChanges(services.require_gallery(), services.audit, who.name)


ReadyRecognition = Annotated[Recognition, Depends(_recognition)]
AppGallery = Annotated[Gallery, Depends(_gallery)]
# the gallery changed by the caller (a ``manage`` key): every change audited under its name
Changes = Annotated[GalleryChanges, Depends(_changes)]
