"""Request bodies as multipart files or base64 in JSON, read into bytes and fields.

Every image route accepts both: ``multipart/form-data`` with file parts, or
``application/json`` with base64 strings (a ``data:image/...;base64,`` prefix is allowed).
There is no way to pass an image URL: the service never fetches anything on a client's
behalf.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from service.api.errors import ApiError
from service.errors import ImageTooLarge

__all__ = ["Payload", "parse_params", "read_payload"]

P = TypeVar("P", bound=BaseModel)


@dataclass
class Payload:
    images: dict[str, list[bytes]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def image(self, name: str) -> bytes | None:
        found = self.images.get(name)
        return found[0] if found else None


def _b64_length(max_bytes: int) -> int:
    """The longest base64 text of ``max_bytes`` bytes."""
    return max_bytes * 4 // 3 + 4


def _b64(name: str, value: Any, max_bytes: int) -> bytes:
    if not isinstance(value, str):
        raise ApiError(400, "invalid_base64", f"{name} must be a base64 string")
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    if len(value) > _b64_length(max_bytes):
        raise ImageTooLarge(f"{name} is over the {max_bytes}-byte image limit")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", f"{name} is not valid base64") from None


async def _form(request: Request, max_images: int, max_image_bytes: int) -> FormData:
    """The multipart form; Starlette's own refusals (a 400 with its message) become ours:
    too many files → 413 ``too_many_images``, an oversized text part → 413
    ``payload_too_large``, anything else → 400 ``invalid_multipart``. A text part may hold
    one base64 image of up to ``max_image_bytes`` (and a ``data:`` prefix)."""
    try:
        return await request.form(
            max_files=max_images, max_fields=64, max_part_size=_b64_length(max_image_bytes) + 256
        )
    except HTTPException as exc:
        detail = str(exc.detail)
        if detail.startswith("Too many files"):
            raise ApiError(
                413, "too_many_images", f"more than {max_images} images in one request"
            ) from None
        if "exceeded maximum size" in detail:
            raise ApiError(413, "payload_too_large", detail) from None
        raise ApiError(400, "invalid_multipart", detail) from None
    except ValueError as exc:  # python-multipart's parse errors, where Starlette lets them out
        raise ApiError(400, "invalid_multipart", f"malformed multipart body: {exc}") from None


async def read_payload(
    request: Request, image_fields: set[str], max_image_bytes: int, max_images: int
) -> Payload:
    """Images (by field name) and the other fields of a JSON or multipart body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    payload = Payload()
    if content_type == "application/json":
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "the JSON body must be an object")
        for key, value in data.items():
            if key in image_fields:
                values = value if isinstance(value, list) else [value]
                payload.images[key] = [_b64(key, v, max_image_bytes) for v in values]
            else:
                payload.fields[key] = value
    elif content_type == "multipart/form-data":
        form = await _form(request, max_images, max_image_bytes)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in image_fields:
                    raise ApiError(400, "unexpected_file", f"unexpected file field {key!r}")
                data_bytes = await value.read(max_image_bytes + 1)
                if len(data_bytes) > max_image_bytes:
                    raise ImageTooLarge(f"{key} is over the {max_image_bytes}-byte image limit")
                payload.images.setdefault(key, []).append(data_bytes)
            elif key in image_fields:
                payload.images.setdefault(key, []).append(_b64(key, value, max_image_bytes))
            else:
                payload.fields[key] = value
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data (image files) or application/json (base64 images)",
        )
    count = sum(len(v) for v in payload.images.values())
    if count > max_images:
        raise ApiError(413, "too_many_images", f"{count} images; at most {max_images} per request")
    return payload


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
