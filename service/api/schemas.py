"""Request parameters and response bodies, one family per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Box = list[float]  # [x1, y1, x2, y2] in image pixels
Point = list[float]  # [x, y]

_BOX = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in image pixels")


class Params(BaseModel):
    """Non-image fields of a request; unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------- faces ----------


class FaceBox(BaseModel):
    box: Box = _BOX
    score: float = Field(description="detector confidence in [0, 1]")
    landmarks: list[Point] = Field(
        description="left eye, right eye, nose, left and right mouth corners (image left/right)"
    )


class EmbeddedFace(FaceBox):
    embedding: list[float] = Field(description="L2-normalised ArcFace embedding")


class EmbedParams(Params):
    max_faces: int | None = Field(None, ge=1, description="keep at most this many faces")
    aligned: bool = Field(False, description="the image is an aligned 112×112 crop: no detection")


class EmbedResponse(BaseModel):
    faces: list[EmbeddedFace]
    faces_found: int
    embedding_size: int


# ---------- verify ----------


class VerifyParams(Params):
    identity_id: str | None = Field(None, description="compare image against this identity")
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="default: the pack's")
    face: Literal["largest", "best"] = Field(
        "largest", description="which face of a multi-face image: largest box or highest score"
    )
    aligned: bool = Field(False, description="images are aligned 112×112 crops: no detection")


class VerifiedFace(FaceBox):
    source: Literal["image", "image2"]
    faces_found: int


class VerifyResponse(BaseModel):
    similarity: float = Field(description="cosine similarity in [-1, 1]")
    threshold: float
    match: bool
    faces: list[VerifiedFace]
    identity_id: str | None = None


# ---------- identify ----------


class IdentifyParams(Params):
    top_k: int = Field(5, ge=1, le=100)
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="default: the pack's")
    max_faces: int | None = Field(None, ge=1, description="identify at most this many faces")
    aligned: bool = Field(False, description="the image is an aligned 112×112 crop")


class Candidate(BaseModel):
    identity_id: str
    name: str
    similarity: float


class IdentifiedFace(FaceBox):
    candidates: list[Candidate]
    match: Candidate | None = Field(
        description="best candidate at or above threshold; null: unknown"
    )


class IdentifyResponse(BaseModel):
    faces: list[IdentifiedFace]
    faces_found: int
    threshold: float


# ---------- identities ----------


class IdentityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class IdentityPatch(BaseModel):
    """Fields left out are kept; ``external_id: null`` clears it, ``metadata: null`` empties
    it; ``name`` cannot be null."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _null_metadata_is_empty(cls, value: dict[str, Any] | None) -> dict[str, Any]:
        return {} if value is None else value

    @model_validator(mode="after")
    def _name_not_null(self) -> IdentityPatch:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class Identity(BaseModel):
    id: str
    name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: datetime
    updated_at: datetime


class IdentityList(BaseModel):
    items: list[Identity]
    total: int
    limit: int
    offset: int


class AddFacesParams(Params):
    box: Box | None = Field(
        None, min_length=4, max_length=4, description="pick the face at this box in each image"
    )
    aligned: bool = Field(False, description="images are aligned 112×112 crops")


class FaceRecord(BaseModel):
    id: str
    identity_id: str
    score: float = Field(description="detector score of the enrolled face")
    width: float = Field(description="face box width in pixels")
    height: float = Field(description="face box height in pixels")
    created_at: datetime


class AddFacesResponse(BaseModel):
    identity: Identity
    faces: list[FaceRecord]


# ---------- service ----------


class Health(BaseModel):
    status: Literal["ok", "starting", "unavailable"]
    detail: dict[str, bool] = Field(default_factory=dict)


class Info(BaseModel):
    version: str
    pack: str
    detector: str = Field(description="the detector and its landmark stage, e.g. yunet+onet")
    detector_license: str = Field(description="the detector weights' license")
    license: str = Field(description="the model pack's license text (detector and recognizer)")
    recognizer: str
    runtime: str
    device: str
    precision: str
    embedding_size: int
    threshold: float
    threshold_source: str
    untrained: bool = Field(
        description="true: a random-initialised recognizer; matches mean nothing"
    )
    gallery_size: int
    auth: Literal["api_keys", "open"]
