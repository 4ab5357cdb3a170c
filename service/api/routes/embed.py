"""POST /embed: boxes, landmarks and embeddings of all faces in an image."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import ApiError, error_responses
from service.api.payload import read_payload
from service.api.routes.common import face_fields
from service.api.schemas import EmbeddedFace, EmbedParams, EmbedResponse
from service.api.state import AppServices, parse_params
from service.recognition.faces import faces_of

router = APIRouter(tags=["recognition"])


@router.post(
    "/embed",
    response_model=EmbedResponse,
    summary="Detect every face and return its embedding",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503, 504),
    openapi_extra=image_request_body(
        {"image": "JPEG, PNG, WebP or BMP"}, EmbedParams, required=("image",)
    ),
)
async def embed(request: Request, services: AppServices, _: Recognizer) -> EmbedResponse:
    settings = services.settings
    payload = await read_payload(request, {"image"}, settings.max_image_bytes, 1)
    params = parse_params(EmbedParams, payload.fields)
    image = payload.image("image")
    if image is None:
        raise ApiError(422, "invalid_request", "image: field required")
    pipeline = services.require_pipeline()
    limit = min(params.max_faces or settings.max_faces, settings.max_faces)
    faces = await faces_of(
        pipeline, image, aligned=params.aligned, max_faces=limit, limit=settings.max_faces
    )
    services.metrics.faces_per_request.labels("/embed").observe(len(faces))
    return EmbedResponse(
        faces=[
            EmbeddedFace(**face_fields(f), embedding=[float(v) for v in f.embedding])  # type: ignore[arg-type]
            for f in faces
        ],
        faces_found=len(faces),
        embedding_size=pipeline.pipeline.embedder.embedding_size,
    )
