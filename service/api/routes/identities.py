"""Identities and their faces: enrolment through the API. Every change goes through
:class:`~service.recognition.changes.GalleryChanges` (``Changes``), audited under the key's
name."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from service.api.auth import Manager
from service.api.docs import image_request_body
from service.api.errors import error_responses
from service.api.requests import ImageRequest, image_request
from service.api.schemas import (
    AddFacesParams,
    AddFacesResponse,
    FaceRecord,
    Identity,
    IdentityCreate,
    IdentityList,
    IdentityPatch,
)
from service.api.state import AppGallery, Changes, ReadyRecognition

router = APIRouter(prefix="/identities", tags=["identities"])

IdentityId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
FaceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]

FacesBody = Annotated[
    ImageRequest[AddFacesParams],
    Depends(image_request(AddFacesParams, {"image"}, missing="at least one image is required")),
]


@router.post(
    "",
    status_code=201,
    response_model=Identity,
    summary="Create an identity (no faces yet)",
    responses=error_responses(400, 401, 403, 409, 413, 422, 429, 504),
)
async def create(body: IdentityCreate, changes: Changes) -> Identity:
    row = await asyncio.to_thread(
        changes.create_identity, body.name, body.external_id, body.metadata
    )
    return Identity.model_validate(row)


@router.get(
    "",
    response_model=IdentityList,
    summary="List identities",
    responses=error_responses(401, 403, 422, 429, 504),
)
async def list_(
    _: Manager,
    gallery: AppGallery,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # SQLite INTEGER range
) -> IdentityList:
    rows, total = await asyncio.to_thread(gallery.list_identities, limit, offset)
    return IdentityList.model_validate(
        {"items": rows, "total": total, "limit": limit, "offset": offset}
    )


@router.get(
    "/{identity_id}",
    response_model=Identity,
    summary="One identity",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def get(identity_id: IdentityId, _: Manager, gallery: AppGallery) -> Identity:
    return Identity.model_validate(await asyncio.to_thread(gallery.get_identity, identity_id))


@router.patch(
    "/{identity_id}",
    response_model=Identity,
    summary="Change name, external id or metadata",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 504),
)
async def update(identity_id: IdentityId, body: IdentityPatch, changes: Changes) -> Identity:
    fields = body.model_dump(exclude_unset=True)
    row = await asyncio.to_thread(changes.update_identity, identity_id, fields)
    return Identity.model_validate(row)


@router.delete(
    "/{identity_id}",
    status_code=204,
    summary="Delete an identity and its faces for good",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def delete(identity_id: IdentityId, changes: Changes) -> Response:
    await asyncio.to_thread(changes.delete_identity, identity_id)
    return Response(status_code=204)


@router.get(
    "/{identity_id}/faces",
    response_model=list[FaceRecord],
    summary="The enrolled faces of an identity (quality figures, no images)",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def list_faces(identity_id: IdentityId, _: Manager, gallery: AppGallery) -> list[FaceRecord]:
    rows = await asyncio.to_thread(gallery.list_faces, identity_id)
    return [FaceRecord.model_validate(r) for r in rows]


@router.post(
    "/{identity_id}/faces",
    status_code=201,
    response_model=AddFacesResponse,
    summary="Enrol faces: one or more images, exactly one usable face each (or a box)",
    description=(
        "Each image must hold exactly one detected face, unless `box` picks one. The face's "
        "embedding and quality (detector score, box size) are stored — never the image — and "
        "the identity's template becomes the normalised mean of its faces' embeddings. All "
        "images are checked before anything is stored: one bad image enrols none."
    ),
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503, 504),
    openapi_extra=image_request_body(
        {"image": "one or more images of this person"},
        AddFacesParams,
        required=("image",),
        many=("image",),
    ),
)
async def add_faces(
    identity_id: IdentityId, changes: Changes, body: FacesBody, recognition: ReadyRecognition
) -> AddFacesResponse:
    params = body.params
    enrolled = await recognition.add_faces(
        changes, identity_id, body.images["image"], box=params.box, aligned=params.aligned
    )
    return AddFacesResponse.model_validate(enrolled)


@router.delete(
    "/{identity_id}/faces/{face_id}",
    status_code=204,
    summary="Delete one enrolled face (the template is recomputed)",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def delete_face(identity_id: IdentityId, face_id: FaceId, changes: Changes) -> Response:
    await asyncio.to_thread(changes.delete_face, identity_id, face_id)
    return Response(status_code=204)
