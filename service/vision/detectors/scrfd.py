"""SCRFD (Guo et al. 2021) as insightface ships it: ``det_10g``, ``det_2.5g``, ``det_500m``,
``scrfd_10g_bnkps``.

Each image is letterboxed into the network input (aspect kept, image at the top-left, zero
padding), normalised ``(x − 127.5) / 128`` in RGB, and run once. Every feature level (strides
8, 16, 32 with two anchors per location; 8…128 with one for five-level models) predicts a
score, four distances to the box sides and ten landmark offsets, all in units of the stride,
from the anchor's centre. Candidates at or above the threshold are decoded, mapped back to
image pixels and reduced by NMS (0.4). The arithmetic follows insightface's ``SCRFD`` class
step by step, so the two agree on the same file and image.

Where the model's batch axis is dynamic and its outputs carry it (``(N, K, C)``), several
images run in one call; otherwise images run one by one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import ModelPackError
from service.vision.detectors.base import DetectorConfig, RGBImage
from service.vision.detectors.nms import nms
from service.vision.faces import DetectedFace

__all__ = ["SCRFD"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Letterbox:
    scale: float
    blob: F32  # (3, H, W)


class SCRFD:
    name = "scrfd"

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        config: DetectorConfig | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        try:
            self._session = ort.InferenceSession(source, options, providers=list(providers))
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelPackError(f"SCRFD could not load its network: {exc}") from exc
        inp = self._session.get_inputs()[0]
        outputs = self._session.get_outputs()
        self._input_name = inp.name
        self._output_names = [o.name for o in outputs]
        levels = {6: (3, 2, False), 9: (3, 2, True), 10: (5, 1, False), 15: (5, 1, True)}
        if len(outputs) not in levels:
            raise ModelPackError(f"not an SCRFD network: {len(outputs)} outputs (6, 9, 10 or 15)")
        self._levels, self._anchors, self.has_landmarks = levels[len(outputs)]
        if not self.has_landmarks:
            raise ModelPackError(
                "this SCRFD network predicts no landmarks (a *_kps model is needed)"
            )
        self._strides = (8, 16, 32, 64, 128)[: self._levels]
        self._batched_outputs = len(outputs[0].shape) == 3
        batch_dim = inp.shape[0]
        self._batches = self._batched_outputs and not (
            isinstance(batch_dim, int) and batch_dim == 1
        )
        h, w = inp.shape[2], inp.shape[3]
        fixed = isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
        self.input_size: tuple[int, int] = (w, h) if fixed else self.config.input_size  # type: ignore[assignment]
        self._centres: dict[tuple[int, int, int], F32] = {}

    def _letterbox(self, image: RGBImage) -> _Letterbox:
        in_w, in_h = self.input_size
        height, width = image.shape[:2]
        im_ratio = float(height) / width
        if im_ratio > float(in_h) / in_w:
            new_h = in_h
            new_w = int(new_h / im_ratio)
        else:
            new_w = in_w
            new_h = int(new_w * im_ratio)
        scale = float(new_h) / height
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
        blob = (canvas.astype(np.float32) - 127.5) * np.float32(1.0 / 128.0)
        return _Letterbox(scale, np.ascontiguousarray(blob.transpose(2, 0, 1)))

    def _anchor_centres(self, height: int, width: int, stride: int) -> F32:
        key = (height, width, stride)
        found = self._centres.get(key)
        if found is None:
            ys, xs = np.mgrid[:height, :width]
            grid = np.stack([xs, ys], axis=-1).astype(np.float32)
            found = (grid * stride).reshape(-1, 2)
            if self._anchors > 1:
                found = np.stack([found] * self._anchors, axis=1).reshape(-1, 2)
            if len(self._centres) < 100:
                self._centres[key] = found
        return found

    def _decode(self, outs: list[F32], scale: float) -> tuple[F32, F32]:
        """Candidates of one image: ``(K, 5)`` boxes with scores, ``(K, 5, 2)`` landmarks."""
        in_w, in_h = self.input_size
        threshold = self.config.threshold
        dets, points = [], []
        for i, stride in enumerate(self._strides):
            scores = outs[i].reshape(-1, 1)
            distances = outs[i + self._levels] * stride
            offsets = outs[i + 2 * self._levels] * stride
            centres = self._anchor_centres(in_h // stride, in_w // stride, stride)
            keep = np.where(scores[:, 0] >= threshold)[0]
            c = centres[keep]
            d = distances[keep]
            boxes = np.stack(
                [c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]],
                axis=-1,
            )
            o = offsets[keep]
            lm = np.stack([c[:, j % 2] + o[:, j] for j in range(o.shape[1])], axis=-1).reshape(
                len(keep), o.shape[1] // 2, 2
            )
            dets.append(np.hstack([boxes / scale, scores[keep]]).astype(np.float32, copy=False))
            points.append((lm / scale).astype(np.float32, copy=False))
        det = np.vstack(dets)
        lms = np.vstack(points)
        order = np.argsort(-det[:, 4], kind="stable")
        return det[order], lms[order]

    def _run(self, blobs: list[F32]) -> list[list[F32]]:
        """Raw outputs per image."""
        if self._batches and len(blobs) > 1:
            outs = self._session.run(self._output_names, {self._input_name: np.stack(blobs)})
            return [[np.asarray(o[b], np.float32) for o in outs] for b in range(len(blobs))]
        results = []
        for blob in blobs:
            outs = self._session.run(self._output_names, {self._input_name: blob[None]})
            if self._batched_outputs:
                outs = [o[0] for o in outs]
            results.append([np.asarray(o, np.float32) for o in outs])
        return results

    def _faces(self, det: F32, lms: F32) -> list[DetectedFace]:
        if len(det):
            keep = nms(det[:, :4], det[:, 4], self.config.nms_threshold)
            det, lms = det[keep], lms[keep]
        faces = [
            DetectedFace(bbox=d[:4].copy(), score=float(d[4]), landmarks=lm)
            for d, lm in zip(det, lms, strict=True)
            if min(d[2] - d[0], d[3] - d[1]) >= self.config.min_face_size
        ]
        return faces[: self.config.max_faces] if self.config.max_faces else faces

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        boxes = [self._letterbox(image) for image in images]
        raw = self._run([b.blob for b in boxes])
        return [
            self._faces(*self._decode(outs, b.scale)) for outs, b in zip(raw, boxes, strict=True)
        ]
