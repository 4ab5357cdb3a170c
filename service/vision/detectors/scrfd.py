"""SCRFD (Guo et al. 2021) as insightface ships it: ``det_10g``, ``det_2.5g``, ``det_500m``,
``scrfd_10g_bnkps``.

The steps, each the same arithmetic as insightface's ``SCRFD`` class (``model_zoo/scrfd.py``),
so that the two agree on the same ONNX file and image:

1. **Letterbox**: the image is resized (bilinear) to fit the network input with its aspect
   kept, placed at the top-left of a zero canvas, and normalised ``(x − 127.5) / 128`` in RGB
   order, NCHW. (insightface takes BGR and swaps through ``blobFromImage(swapRB=True)``; this
   detector takes RGB, so no swap is needed.)
2. **Network**: one run per image, or per batch of images where the model's batch axis is
   free and its outputs keep it (``(N, K, C)``).
3. **Decode**: every feature level (strides 8, 16, 32 with two anchors per location; 8…128
   with one anchor for five-level models) predicts a score, four distances from the anchor
   centre to the box sides and ten landmark offsets, in units of the stride. Anchors scoring
   at least ``threshold`` are decoded and mapped back to image pixels by the letterbox scale.
4. **NMS** at ``nms_threshold`` (insightface: 0.4), highest score first.
5. **Limits** (not in insightface): faces whose shorter box side is below ``min_face_size``
   are dropped, then at most ``max_faces`` are kept (see :class:`SCRFD` for the ranking).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import ModelPackError
from service.inference.onnxruntime_runtime import varying_shape_providers
from service.vision.detectors.base import DetectorConfig, RGBImage, threshold_or_default
from service.vision.detectors.nms import nms
from service.vision.faces import DetectedFace

__all__ = ["SCRFD"]

F32 = npt.NDArray[np.float32]
Ranking = Literal["score", "center", "area"]

_MEAN = 127.5
_NMS_THRESHOLD = 0.4  # insightface's
_SCALE = 1.0 / 128.0
# outputs → (feature levels, anchors per location, predicts landmarks)
_LAYOUTS = {6: (3, 2, False), 9: (3, 2, True), 10: (5, 1, False), 15: (5, 1, True)}


class SCRFD:
    """SCRFD on ONNX Runtime behind the detector interface.

    ``model`` is the ONNX file (path or bytes); ``providers`` the ONNX Runtime execution
    providers, in order of preference. A model with a fixed spatial input size runs at that
    size whatever ``config.input_size`` says (as insightface does).

    ``max_faces_by`` picks which faces survive ``config.max_faces``: ``"score"`` (the
    default, what :class:`DetectorConfig` documents) keeps the highest scores. ``"center"``
    keeps what insightface's ``detect(max_num=…)`` keeps: the largest
    ``area − 2 · (squared distance of the box centre from the image centre)``, favouring big
    central faces; ``"area"`` is its ``metric="max"``, the largest boxes. Either way the
    faces come back sorted by score, as the detector interface requires (insightface
    returns them in ranking order), and the limit applies after ``min_face_size``.

    ``max_batch`` bounds how many images go into one run of a model with a free batch axis.
    """

    name = "scrfd"

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        config: DetectorConfig | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        max_faces_by: Ranking = "score",
        max_batch: int = 8,
    ) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig()
        self.threshold = threshold_or_default(self.config, "scrfd")
        nms_threshold = self.config.nms_threshold
        self.nms_threshold = _NMS_THRESHOLD if nms_threshold is None else float(nms_threshold)
        self.max_faces_by: Ranking = max_faces_by
        options = ort.SessionOptions()
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else os.fspath(model)
        try:
            self._session = ort.InferenceSession(
                source, options, providers=varying_shape_providers(providers)
            )
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelPackError(f"SCRFD could not load its network: {exc}") from exc

        inp = self._session.get_inputs()[0]
        outputs = self._session.get_outputs()
        if len(outputs) not in _LAYOUTS or len(inp.shape) != 4:
            raise ModelPackError(
                f"not an SCRFD network: {len(outputs)} outputs (6, 9, 10 or 15 expected) "
                f"and input shape {inp.shape} (NCHW expected)"
            )
        levels, anchors, has_landmarks = _LAYOUTS[len(outputs)]
        if not has_landmarks:
            raise ModelPackError(
                "this SCRFD network predicts no landmarks (a *_kps model is needed)"
            )
        self._input_name: str = inp.name
        self._output_names: list[str] = [o.name for o in outputs]
        self._levels = levels
        self._anchors = anchors
        self._strides = (8, 16, 32, 64, 128)[:levels]

        height, width = _fixed(inp.shape[2]), _fixed(inp.shape[3])
        if height and width:
            self.input_size: tuple[int, int] = (width, height)
        else:
            self.input_size = (int(self.config.input_size[0]), int(self.config.input_size[1]))
        if any(side <= 0 or side % self._strides[-1] for side in self.input_size):
            raise ValueError(
                f"SCRFD input size {self.input_size} must be positive multiples of "
                f"{self._strides[-1]} (its largest stride)"
            )

        # Batching: outputs of rank 3 carry the batch axis; of rank 2 they are one image's.
        self._batched_outputs = len(outputs[0].shape) == 3
        batch_dim = _fixed(inp.shape[0])
        if not self._batched_outputs:
            if batch_dim > 1:
                raise ModelPackError(f"SCRFD input batch {batch_dim} with unbatched outputs")
            self._batch, self._pad_batch = 1, False
        elif batch_dim:  # a fixed batch: partial batches are padded up to it
            self._batch, self._pad_batch = batch_dim, batch_dim > 1
        else:
            self._batch, self._pad_batch = max(1, max_batch), False
        self._centres = {
            stride: _anchor_centres(
                self.input_size[1] // stride, self.input_size[0] // stride, stride, anchors
            )
            for stride in self._strides
        }

    # -- 1. letterbox ---------------------------------------------------------------------

    def _letterbox(self, image: RGBImage, out: F32) -> float:
        """Write the normalised letterboxed image into ``out`` (3, H, W); returns the scale."""
        in_w, in_h = self.input_size
        height, width = int(image.shape[0]), int(image.shape[1])
        im_ratio = float(height) / width
        if im_ratio > float(in_h) / in_w:
            new_h = in_h
            new_w = int(new_h / im_ratio)
        else:
            new_w = in_w
            new_h = int(new_w * im_ratio)
        new_w, new_h = max(new_w, 1), max(new_h, 1)  # extreme aspect ratios (insightface fails)
        resized = cv2.resize(image, (new_w, new_h))
        out.fill(np.float32((0.0 - _MEAN) * _SCALE))
        out[:, :new_h, :new_w] = (
            resized.transpose(2, 0, 1).astype(np.float32) - np.float32(_MEAN)
        ) * np.float32(_SCALE)
        return float(new_h) / height

    # -- 2. network -----------------------------------------------------------------------

    def _run(self, blob: F32) -> list[list[F32]]:
        """Raw outputs per image of ``blob`` (N, 3, H, W), one list of arrays per image."""
        count = len(blob)
        if not self._batched_outputs:
            per_image = []
            for one in blob:
                outs = self._session.run(self._output_names, {self._input_name: one[None]})
                per_image.append([np.asarray(o, np.float32) for o in outs])
            return per_image
        if self._pad_batch and count < self._batch:
            blob = np.concatenate(
                [blob, np.zeros((self._batch - count, *blob.shape[1:]), blob.dtype)]
            )
        outs = self._session.run(self._output_names, {self._input_name: blob})
        return [[np.asarray(o[b], np.float32) for o in outs] for b in range(count)]

    # -- 3. decode ------------------------------------------------------------------------

    def _decode(self, outs: list[F32], scale: float) -> tuple[F32, F32]:
        """Candidates of one image: ``(K, 5)`` boxes + scores, ``(K, 5, 2)`` landmarks.

        Sorted by descending score, ties in level-then-anchor order (a stable sort), as
        insightface orders them before its NMS.
        """
        threshold = self.threshold
        dets, points = [], []
        for i, stride in enumerate(self._strides):
            scores = outs[i].reshape(-1)
            keep = np.flatnonzero(scores >= threshold)
            centres = self._centres[stride][keep]
            dist = outs[i + self._levels][keep] * stride
            offsets = outs[i + 2 * self._levels][keep] * stride
            boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
            landmarks = offsets.reshape(len(keep), offsets.shape[1] // 2, 2) + centres[:, None, :]
            dets.append(np.hstack([boxes / scale, scores[keep, None]]).astype(np.float32))
            points.append((landmarks / scale).astype(np.float32))
        det = np.concatenate(dets)
        lms = np.concatenate(points)
        order = np.argsort(-det[:, 4], kind="stable")
        return det[order], lms[order]

    # -- 4. NMS and 5. limits --------------------------------------------------------------

    def _select(self, det: F32, lms: F32, image_shape: tuple[int, ...]) -> list[DetectedFace]:
        """NMS, then ``min_face_size``, then ``max_faces``; faces by descending score."""
        if len(det):
            keep = nms(det[:, :4], det[:, 4], self.nms_threshold)
            det, lms = det[keep], lms[keep]
        if self.config.min_face_size > 0:
            sides = np.minimum(det[:, 2] - det[:, 0], det[:, 3] - det[:, 1])
            big = sides >= self.config.min_face_size
            det, lms = det[big], lms[big]
        limit = self.config.max_faces
        if limit and len(det) > limit:
            if self.max_faces_by == "score":
                chosen = np.arange(limit)
            else:
                chosen = np.sort(_rank(det, image_shape, self.max_faces_by)[:limit])
            det, lms = det[chosen], lms[chosen]
        return [
            DetectedFace(bbox=d[:4].copy(), score=float(d[4]), landmarks=lm)
            for d, lm in zip(det, lms, strict=True)
        ]

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces per image (RGB, uint8, HWC), each list sorted by descending score."""
        found: list[list[DetectedFace]] = []
        in_w, in_h = self.input_size
        for start in range(0, len(images), self._batch):
            chunk = images[start : start + self._batch]
            blob = np.empty((len(chunk), 3, in_h, in_w), np.float32)
            scales = [self._letterbox(image, blob[k]) for k, image in enumerate(chunk)]
            raw = self._run(blob)
            found.extend(
                self._select(*self._decode(outs, scale), image.shape)
                for outs, scale, image in zip(raw, scales, chunk, strict=True)
            )
        return found


def _fixed(dim: object) -> int:
    """A fixed, positive ONNX dimension, or 0 for a symbolic / unknown one."""
    return dim if isinstance(dim, int) and dim > 0 else 0


def _anchor_centres(height: int, width: int, stride: int, anchors: int) -> F32:
    """``(height · width · anchors, 2)`` anchor centres ``(x, y)`` in input pixels, row-major,
    each location repeated once per anchor (the order of SCRFD's flattened outputs)."""
    ys, xs = np.mgrid[:height, :width]
    centres = (np.stack([xs, ys], axis=-1).astype(np.float32) * stride).reshape(-1, 2)
    return np.repeat(centres, anchors, axis=0)


def _rank(det: F32, image_shape: tuple[int, ...], by: Ranking) -> npt.NDArray[np.intp]:
    """Indices of ``det`` from best to worst by insightface's ``max_num`` ranking."""
    area = (det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1])
    if by == "area":
        values = area
    else:
        cy, cx = image_shape[0] // 2, image_shape[1] // 2
        dx = (det[:, 0] + det[:, 2]) / 2 - cx
        dy = (det[:, 1] + det[:, 3]) / 2 - cy
        values = area - (dx * dx + dy * dy) * 2.0
    return np.argsort(values)[::-1]
