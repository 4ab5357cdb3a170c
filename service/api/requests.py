"""The image routes' shared preamble as one dependency: read the body (multipart or base64
JSON), validate its other fields, insist on the image it must hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel

from service.api.errors import ApiError
from service.api.payload import parse_params, read_payload
from service.api.state import Services

__all__ = ["ImageRequest", "image_request"]

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class ImageRequest(Generic[P]):
    """An image route's body: its images by field name, and its other fields validated."""

    params: P
    images: dict[str, list[bytes]]

    def image(self, name: str) -> bytes | None:
        found = self.images.get(name)
        return found[0] if found else None


def image_request(
    params: type[P],
    fields: Iterable[str],
    *,
    max_images: int | None = None,
    required: str = "image",
    missing: str = "field required",
) -> Callable[[Request], Awaitable[ImageRequest[P]]]:
    """A dependency reading at most ``max_images`` images (None: ``FACEREC_MAX_IMAGES_PER_
    REQUEST``) of the image ``fields`` and the other fields as ``params``; a body without
    the ``required`` image is 422 ``invalid_request`` (``"{required}: {missing}"``).

    List it after the route's key check (``Recognizer``, ``Manager``): dependencies run in
    the order they are declared, and a request is authenticated before its body is read."""
    names = set(fields)

    async def dependency(request: Request) -> ImageRequest[P]:
        services: Services = request.app.state.services
        settings = services.settings
        limit = max_images if max_images is not None else settings.max_images_per_request
        payload = await read_payload(request, names, settings.max_image_bytes, limit)
        body = ImageRequest(parse_params(params, payload.fields), payload.images)
        if not body.images.get(required):
            raise ApiError(422, "invalid_request", f"{required}: {missing}")
        return body

    return dependency
