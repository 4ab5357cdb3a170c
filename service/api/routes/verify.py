"""POST /verify: 1:1 — two images, or one image against an enrolled identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import ApiError, error_responses
from service.api.requests import ImageRequest, image_request
from service.api.schemas import VerifyParams, VerifyResponse
from service.api.state import AppGallery, ReadyRecognition

router = APIRouter(tags=["recognition"])

_IMAGES = {
    "image": "the probe: JPEG, PNG, WebP or BMP",
    "image2": "the image to compare with (omit when identity_id is given)",
}

Body = Annotated[
    ImageRequest[VerifyParams], Depends(image_request(VerifyParams, _IMAGES, max_images=2))
]


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Are two faces the same person?",
    description=(
        "Compares the largest face of `image` (or the best-scored, with `face=best`) with "
        "that of `image2`, or with the template of the enrolled `identity_id`. `similarity` "
        "is the cosine of the two ArcFace embeddings; `match` is `similarity >= threshold`."
    ),
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503, 504),
    openapi_extra=image_request_body(
        _IMAGES,
        VerifyParams,
        required=("image",),
        example={"image": "<base64 JPEG>", "image2": "<base64 JPEG>", "threshold": 0.3},
    ),
)
async def verify(
    _: Recognizer, body: Body, recognition: ReadyRecognition, gallery: AppGallery
) -> VerifyResponse:
    params = body.params
    image, image2 = body.image("image"), body.image("image2")
    assert image is not None  # the dependency insists on it
    if (image2 is None) == (params.identity_id is None):
        raise ApiError(
            422, "invalid_request", "give exactly one of image2 or identity_id with image"
        )
    if image2 is not None:
        result = await recognition.verify(
            image, image2, aligned=params.aligned, face=params.face, threshold=params.threshold
        )
    else:
        assert params.identity_id is not None
        result = await recognition.verify_identity(
            gallery,
            image,
            params.identity_id,
            aligned=params.aligned,
            face=params.face,
            threshold=params.threshold,
        )
    return VerifyResponse.model_validate(result)
