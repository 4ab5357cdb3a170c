"""Request parameters and response bodies, one family per resource.

Response bodies are read from the domain objects the use cases return (``from_attributes``:
``EmbedResponse.model_validate(embedded)``); the rounding of what a client sees (pixels to 2
decimals, scores to 5, similarities to 6) is done here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Box = list[float]  # [x1, y1, x2, y2] in image pixels
Point = list[float]  # [x, y]

_BOX = Field(
    min_length=4,
    max_length=4,
    description="[x1, y1, x2, y2] in image pixels",
    validation_alias=AliasChoices("box", "bbox"),  # a domain face calls it bbox
)


class Response(BaseModel):
    """A response body, built from the domain object of the same shape."""

    model_config = ConfigDict(from_attributes=True)


class Params(BaseModel):
    """Non-image fields of a request; unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# ---------- faces ----------


class FaceBox(Response):
    box: Box = _BOX
    score: float = Field(description="detector confidence in [0, 1]")
    landmarks: list[Point] = Field(
        description="left eye, right eye, nose, left and right mouth corners (image left/right)"
    )

    @field_validator("box", mode="before")
    @classmethod
    def _box_pixels(cls, value: Any) -> list[float]:
        return [round(float(v), 2) for v in value]

    @field_validator("landmarks", mode="before")
    @classmethod
    def _landmark_pixels(cls, value: Any) -> list[list[float]]:
        return [[round(float(x), 2), round(float(y), 2)] for x, y in value]

    @field_validator("score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> float:
        return round(float(value), 5)


class EmbeddedFace(FaceBox):
    embedding: list[float] = Field(description="L2-normalised ArcFace embedding")

    @field_validator("embedding", mode="before")
    @classmethod
    def _floats(cls, value: Any) -> list[float]:
        return [float(v) for v in value]


class EmbedParams(Params):
    max_faces: int | None = Field(None, ge=1, description="keep at most this many faces")
    aligned: bool = Field(False, description="the image is an aligned 112×112 crop: no detection")


class EmbedResponse(Response):
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


class VerifyResponse(Response):
    similarity: float = Field(description="cosine similarity in [-1, 1]")
    threshold: float
    match: bool
    faces: list[VerifiedFace]
    identity_id: str | None = None

    @field_validator("similarity")
    @classmethod
    def _similarity(cls, value: float) -> float:
        return round(value, 6)


# ---------- identify ----------


class IdentifyParams(Params):
    top_k: int = Field(5, ge=1, le=100)
    threshold: float | None = Field(None, ge=-1.0, le=1.0, description="default: the pack's")
    max_faces: int | None = Field(None, ge=1, description="identify at most this many faces")
    aligned: bool = Field(False, description="the image is an aligned 112×112 crop")


class Candidate(Response):
    identity_id: str
    name: str
    similarity: float

    @field_validator("similarity")
    @classmethod
    def _similarity(cls, value: float) -> float:
        return round(value, 6)


class IdentifiedFace(FaceBox):
    candidates: list[Candidate]
    match: Candidate | None = Field(
        description="best candidate at or above threshold; null: unknown"
    )


class IdentifyResponse(Response):
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


class Identity(Response):
    id: str
    name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: datetime
    updated_at: datetime


class IdentityList(Response):
    items: list[Identity]
    total: int
    limit: int
    offset: int


class AddFacesParams(Params):
    box: Box | None = Field(
        None, min_length=4, max_length=4, description="pick the face at this box in each image"
    )
    aligned: bool = Field(False, description="images are aligned 112×112 crops")


class FaceRecord(Response):
    id: str
    identity_id: str
    score: float = Field(description="detector score of the enrolled face")
    width: float = Field(description="face box width in pixels")
    height: float = Field(description="face box height in pixels")
    created_at: datetime


class AddFacesResponse(Response):
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
