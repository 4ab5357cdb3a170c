"""``manifest.json``: what a model pack holds, with hashes, preprocessing and license."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DetectorSpec", "FileRef", "Manifest", "RecognizerSpec", "ThresholdSpec"]

INSIGHTFACE_LICENSE = (
    "The pretrained models of insightface are available for non-commercial research "
    "purposes only (https://github.com/deepinsight/insightface#license). Check their terms "
    "before serving them; train your own arcface_torch model for commercial use."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Strict):
    path: str = Field(description="relative to the pack folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DetectorSpec(_Strict):
    kind: Literal["mtcnn", "scrfd", "yunet"]
    files: dict[str, FileRef] = Field(
        description="mtcnn: pnet, rnet, onet; scrfd: model; yunet: model, and onet where its "
        "landmarks come from MTCNN's O-Net"
    )
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="the pack's default score threshold (FACEREC_DET_THRESHOLD overrides); "
        "unset: the detector's own (mtcnn 0.7, scrfd 0.5, yunet 0.6)",
    )
    landmarks: Literal["detector", "onet"] = Field(
        "detector",
        description="where the five landmarks come from by default (FACEREC_LANDMARKS "
        "overrides): the detector's own, or MTCNN's O-Net on the detector's boxes",
    )
    license: str = Field("", description="the detector weights' license")


class RecognizerSpec(_Strict):
    file: FileRef
    arch: str
    embedding_size: int = Field(gt=0)
    input_size: int = Field(112, gt=0)
    input_mean: float = 127.5
    input_std: float = Field(127.5, gt=0)
    color_order: Literal["RGB", "BGR"] = "RGB"
    untrained: bool = Field(False, description="random-initialised: its matches mean nothing")


class ThresholdSpec(_Strict):
    value: float = Field(ge=-1.0, le=1.0, description="cosine similarity for a match")
    source: Literal["default", "calibrated"] = "default"
    far: float | None = Field(None, description="false-accept rate it was calibrated for")
    note: str = ""


class Manifest(_Strict):
    format: Literal[1] = 1
    name: str = Field(min_length=1, max_length=100)
    detector: DetectorSpec
    recognizer: RecognizerSpec
    verify_threshold: ThresholdSpec
    license: str
    source: str = ""
