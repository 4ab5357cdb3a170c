"""POST /verify: 1:1 — two images, or one image against an enrolled identity."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import ApiError, error_responses
from service.api.payload import read_payload
from service.api.routes.common import face_fields
from service.api.schemas import VerifiedFace, VerifyParams, VerifyResponse
from service.api.state import AppServices, parse_params
from service.recognition.choice import select_face
from service.recognition.faces import faces_of, faces_of_each
from service.recognition.matching import accepts, cosine

router = APIRouter(tags=["recognition"])

_IMAGES = {
    "image": "the probe: JPEG, PNG, WebP or BMP",
    "image2": "the image to compare with (omit when identity_id is given)",
}


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
async def verify(request: Request, services: AppServices, _: Recognizer) -> VerifyResponse:
    settings = services.settings
    payload = await read_payload(request, set(_IMAGES), settings.max_image_bytes, 2)
    params = parse_params(VerifyParams, payload.fields)
    first, second = payload.image("image"), payload.image("image2")
    if first is None:
        raise ApiError(422, "invalid_request", "image: field required")
    if (second is None) == (params.identity_id is None):
        raise ApiError(
            422, "invalid_request", "give exactly one of image2 or identity_id with image"
        )
    pipeline = services.require_pipeline()
    threshold = (
        params.threshold if params.threshold is not None else services.require_model().threshold
    )
    limit = settings.max_faces

    if second is not None:
        faces_a, faces_b = await faces_of_each(
            pipeline, [first, second], aligned=params.aligned, max_faces=limit, limit=limit
        )
        a = select_face(faces_a, params.face, "image")
        b = select_face(faces_b, params.face, "image2")
        similarity = cosine(a.embedding, b.embedding)
        used = [
            VerifiedFace(**face_fields(a), source="image", faces_found=len(faces_a)),  # type: ignore[arg-type]
            VerifiedFace(**face_fields(b), source="image2", faces_found=len(faces_b)),  # type: ignore[arg-type]
        ]
        identity_id = None
    else:
        assert params.identity_id is not None
        template = await asyncio.to_thread(services.gallery.template, params.identity_id)
        faces_a = await faces_of(
            pipeline, first, aligned=params.aligned, max_faces=limit, limit=limit
        )
        a = select_face(faces_a, params.face, "image")
        similarity = cosine(a.embedding, template)
        used = [VerifiedFace(**face_fields(a), source="image", faces_found=len(faces_a))]  # type: ignore[arg-type]
        identity_id = params.identity_id
    return VerifyResponse(
        similarity=round(similarity, 6),
        threshold=threshold,
        match=accepts(similarity, threshold),
        faces=used,
        identity_id=identity_id,
    )
