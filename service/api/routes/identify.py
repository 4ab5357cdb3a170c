"""POST /identify: 1:N — every face of an image against the gallery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import error_responses
from service.api.requests import ImageRequest, image_request
from service.api.schemas import IdentifyParams, IdentifyResponse
from service.api.state import AppGallery, AppServices, ReadyRecognition

router = APIRouter(tags=["recognition"])

Body = Annotated[
    ImageRequest[IdentifyParams],
    Depends(image_request(IdentifyParams, {"image"}, max_images=1)),
]


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    summary="Who is in this image?",
    description=(
        "Detects the faces of `image` (at most `max_faces`, highest detector scores first) and "
        "searches the gallery for each. `candidates` are the `top_k` nearest identities by "
        "cosine similarity; `match` is the best candidate at or above `threshold`, or null: "
        "an unknown face. An image without faces gives `faces: []`."
    ),
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503, 504),
    openapi_extra=image_request_body(
        {"image": "JPEG, PNG, WebP or BMP"},
        IdentifyParams,
        required=("image",),
        example={"image": "<base64 JPEG>", "top_k": 5},
    ),
)
async def identify(
    _: Recognizer,
    body: Body,
    recognition: ReadyRecognition,
    gallery: AppGallery,
    services: AppServices,
) -> IdentifyResponse:
    params = body.params
    result = await recognition.identify(
        gallery,
        body.images["image"][0],
        aligned=params.aligned,
        max_faces=params.max_faces,
        top_k=params.top_k,
        threshold=params.threshold,
    )
    services.metrics.faces_per_request.labels("/identify").observe(result.faces_found)
    return IdentifyResponse.model_validate(result)
