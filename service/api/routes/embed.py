"""POST /embed: boxes, landmarks and embeddings of all faces in an image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import error_responses
from service.api.requests import ImageRequest, image_request
from service.api.schemas import EmbedParams, EmbedResponse
from service.api.state import AppServices, ReadyRecognition

router = APIRouter(tags=["recognition"])

Body = Annotated[
    ImageRequest[EmbedParams], Depends(image_request(EmbedParams, {"image"}, max_images=1))
]


@router.post(
    "/embed",
    response_model=EmbedResponse,
    summary="Detect every face and return its embedding",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503, 504),
    openapi_extra=image_request_body(
        {"image": "JPEG, PNG, WebP or BMP"}, EmbedParams, required=("image",)
    ),
)
async def embed(
    _: Recognizer, body: Body, recognition: ReadyRecognition, services: AppServices
) -> EmbedResponse:
    params = body.params
    found = await recognition.embed(
        body.images["image"][0], aligned=params.aligned, max_faces=params.max_faces
    )
    services.metrics.faces_per_request.labels("/embed").observe(found.faces_found)
    return EmbedResponse.model_validate(found)
