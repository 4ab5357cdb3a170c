"""POST /identify: 1:N — every face of an image against the gallery."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.auth import Recognizer
from service.api.docs import image_request_body
from service.api.errors import ApiError, error_responses
from service.api.payload import read_payload
from service.api.routes.common import face_fields
from service.api.schemas import Candidate, IdentifiedFace, IdentifyParams, IdentifyResponse
from service.api.state import AppServices, parse_params
from service.recognition import faces_of

router = APIRouter(tags=["recognition"])


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
async def identify(request: Request, services: AppServices, _: Recognizer) -> IdentifyResponse:
    settings = services.settings
    payload = await read_payload(request, {"image"}, settings.max_image_bytes, 1)
    params = parse_params(IdentifyParams, payload.fields)
    image = payload.image("image")
    if image is None:
        raise ApiError(422, "invalid_request", "image: field required")
    pipeline = services.require_pipeline()
    threshold = (
        params.threshold if params.threshold is not None else services.require_model().threshold
    )
    limit = min(params.max_faces or settings.max_faces, settings.max_faces)
    services.admit_search()  # overloaded: refused before detection, not after
    faces = await faces_of(
        pipeline, image, aligned=params.aligned, max_faces=limit, limit=settings.max_faces
    )
    services.metrics.faces_per_request.labels("/identify").observe(len(faces))
    results = await services.search([f.embedding for f in faces], params.top_k)
    out = []
    for face, matches in zip(faces, results, strict=True):
        candidates = [
            Candidate(identity_id=m.identity_id, name=m.name, similarity=round(m.similarity, 6))
            for m in matches
        ]
        # the match rule on the similarity itself, not on its rounding for display (which
        # could lift an impostor just below the threshold onto it)
        best = candidates[0] if matches and matches[0].similarity >= threshold else None
        out.append(IdentifiedFace(**face_fields(face), candidates=candidates, match=best))  # type: ignore[arg-type]
    return IdentifyResponse(faces=out, faces_found=len(faces), threshold=threshold)
