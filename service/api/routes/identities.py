"""Identities and their faces: enrolment through the API."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from service.api.auth import Manager
from service.api.docs import image_request_body
from service.api.errors import ApiError, error_responses
from service.api.payload import read_payload
from service.api.schemas import (
    AddFacesParams,
    AddFacesResponse,
    FaceRecord,
    Identity,
    IdentityCreate,
    IdentityList,
    IdentityPatch,
)
from service.api.state import AppServices, parse_params
from service.audit import AuditLog
from service.gallery.store import FaceRow, IdentityRow
from service.recognition.choice import enrolment_face
from service.recognition.faces import faces_of_each

router = APIRouter(prefix="/identities", tags=["identities"])

IdentityId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
FaceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _audit_log(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


Audit = Annotated[AuditLog, Depends(_audit_log)]


def _identity(row: IdentityRow) -> Identity:
    return Identity(
        id=row.id,
        name=row.name,
        external_id=row.external_id,
        metadata=row.metadata,
        face_count=row.face_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _face(row: FaceRow) -> FaceRecord:
    return FaceRecord(
        id=row.id,
        identity_id=row.identity_id,
        score=row.score,
        width=row.width,
        height=row.height,
        created_at=row.created_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=Identity,
    summary="Create an identity (no faces yet)",
    responses=error_responses(400, 401, 403, 409, 413, 422, 429, 504),
)
async def create(
    body: IdentityCreate, services: AppServices, who: Manager, audit: Audit
) -> Identity:
    row = await asyncio.to_thread(
        services.gallery.create_identity, body.name, body.external_id, body.metadata
    )
    await asyncio.to_thread(audit.record, who.name, "identity.create", row.id)
    return _identity(row)


@router.get(
    "",
    response_model=IdentityList,
    summary="List identities",
    responses=error_responses(401, 403, 422, 429, 504),
)
async def list_(
    services: AppServices,
    _: Manager,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # SQLite INTEGER range
) -> IdentityList:
    rows, total = await asyncio.to_thread(services.gallery.list_identities, limit, offset)
    return IdentityList(items=[_identity(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/{identity_id}",
    response_model=Identity,
    summary="One identity",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def get(identity_id: IdentityId, services: AppServices, _: Manager) -> Identity:
    return _identity(await asyncio.to_thread(services.gallery.get_identity, identity_id))


@router.patch(
    "/{identity_id}",
    response_model=Identity,
    summary="Change name, external id or metadata",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 504),
)
async def update(
    identity_id: IdentityId, body: IdentityPatch, services: AppServices, who: Manager, audit: Audit
) -> Identity:
    changes = body.model_dump(exclude_unset=True)
    row = await asyncio.to_thread(services.gallery.update_identity, identity_id, changes)
    await asyncio.to_thread(
        audit.record, who.name, "identity.update", identity_id, fields=list(changes)
    )
    return _identity(row)


@router.delete(
    "/{identity_id}",
    status_code=204,
    summary="Delete an identity and its faces for good",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def delete(
    identity_id: IdentityId, services: AppServices, who: Manager, audit: Audit
) -> Response:
    faces = await asyncio.to_thread(services.gallery.list_faces, identity_id)
    await asyncio.to_thread(services.gallery.delete_identity, identity_id)
    await asyncio.to_thread(
        audit.record, who.name, "identity.delete", identity_id, face_ids=[f.id for f in faces]
    )
    return Response(status_code=204)


@router.get(
    "/{identity_id}/faces",
    response_model=list[FaceRecord],
    summary="The enrolled faces of an identity (quality figures, no images)",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def list_faces(
    identity_id: IdentityId, services: AppServices, _: Manager
) -> list[FaceRecord]:
    rows = await asyncio.to_thread(services.gallery.list_faces, identity_id)
    return [_face(r) for r in rows]


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
    identity_id: IdentityId, request: Request, services: AppServices, who: Manager, audit: Audit
) -> AddFacesResponse:
    settings = services.settings
    payload = await read_payload(
        request, {"image"}, settings.max_image_bytes, settings.max_images_per_request
    )
    params = parse_params(AddFacesParams, payload.fields)
    images = payload.images.get("image", [])
    if not images:
        raise ApiError(422, "invalid_request", "image: at least one image is required")
    await asyncio.to_thread(services.gallery.get_identity, identity_id)  # 404 before work
    pipeline = services.require_pipeline()
    found = await faces_of_each(
        pipeline,
        images,
        aligned=params.aligned,
        max_faces=settings.max_faces,
        limit=settings.max_faces,
    )
    chosen = [enrolment_face(faces, params.box, f"image {i + 1}") for i, faces in enumerate(found)]
    embeddings = np.stack([f.embedding for f in chosen])
    qualities = [(round(f.score, 5), round(f.width, 1), round(f.height, 1)) for f in chosen]
    rows = await asyncio.to_thread(services.gallery.add_faces, identity_id, embeddings, qualities)
    await asyncio.to_thread(
        audit.record, who.name, "faces.add", identity_id, face_ids=[r.id for r in rows]
    )
    identity = await asyncio.to_thread(services.gallery.get_identity, identity_id)
    return AddFacesResponse(identity=_identity(identity), faces=[_face(r) for r in rows])


@router.delete(
    "/{identity_id}/faces/{face_id}",
    status_code=204,
    summary="Delete one enrolled face (the template is recomputed)",
    responses=error_responses(401, 403, 404, 422, 429, 504),
)
async def delete_face(
    identity_id: IdentityId, face_id: FaceId, services: AppServices, who: Manager, audit: Audit
) -> Response:
    await asyncio.to_thread(services.gallery.delete_face, identity_id, face_id)
    await asyncio.to_thread(audit.record, who.name, "face.delete", identity_id, face_ids=[face_id])
    return Response(status_code=204)
