"""OpenAPI request bodies for routes that take images as multipart files or base64 JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def image_request_body(
    images: dict[str, str],
    params: type[BaseModel] | None = None,
    *,
    required: tuple[str, ...] = (),
    many: tuple[str, ...] = (),
    example: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``openapi_extra`` documenting both content types of an image route.

    ``images`` maps each image field to its description; ``many`` names fields that take
    several images; ``params`` is the model of the other fields.
    """
    fields = params.model_json_schema().get("properties", {}) if params else {}

    def image_schema(fmt: str, name: str) -> dict[str, Any]:
        one = {"type": "string", "format": fmt, "description": images[name]}
        return {"type": "array", "items": one, "minItems": 1} if name in many else one

    json_schema = {
        "type": "object",
        "properties": {**{n: image_schema("byte", n) for n in images}, **fields},
        "required": list(required),
        "additionalProperties": False,
    }
    form_schema = {
        "type": "object",
        "properties": {**{n: image_schema("binary", n) for n in images}, **fields},
        "required": list(required),
    }
    json_content: dict[str, Any] = {"schema": json_schema}
    if example is not None:
        json_content["example"] = example
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": json_content,
                "multipart/form-data": {"schema": form_schema},
            },
        }
    }
