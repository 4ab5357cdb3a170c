"""What the routes reach through ``app.state``: loaded once in the lifespan."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from service.api.errors import ApiError
from service.api.metrics import Metrics
from service.errors import ModelNotReady
from service.pipeline import AsyncPipeline
from service.settings import Settings

P = TypeVar("P", bound=BaseModel)


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
    settings: Settings
    metrics: Metrics
    pipeline: AsyncPipeline | None = None
    gallery: Any = None  # service.gallery.Gallery once open
    model: ModelInfo | None = None
    ready: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def require_pipeline(self) -> AsyncPipeline:
        if self.pipeline is None or not self.ready:
            raise ModelNotReady("models are still loading; retry shortly")
        return self.pipeline

    def admit_search(self) -> None:
        """Raise ``Overloaded`` now if the gallery search queue is full (before any work)."""
        searcher = self.extra.get("searcher")
        if searcher is not None:
            searcher.admit()

    async def search(self, embeddings: list[Any], k: int) -> list[list[Any]]:
        """Gallery matches for each embedding, batched with other requests' searches.

        Queued even over the search queue's bound: the request was admitted
        (``admit_search``) and its faces already detected and embedded."""
        if not embeddings:
            return []
        searcher = self.extra.get("searcher")
        if searcher is None or not self.ready:
            raise ModelNotReady("the gallery is still opening; retry shortly")
        results = await searcher.submit_many(embeddings, admitted=True)
        return [r[:k] for r in results]

    def require_model(self) -> ModelInfo:
        if self.model is None:
            raise ModelNotReady("models are still loading; retry shortly")
        return self.model


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(_services)]


def parse_params(model: type[P], fields: dict[str, Any]) -> P:
    """Validate non-image fields; form strings holding JSON lists/objects are decoded."""
    decoded = {}
    for key, value in fields.items():
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        decoded[key] = value
    try:
        return model.model_validate(decoded)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"])
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        raise ApiError(422, "invalid_request", "; ".join(parts)) from None
