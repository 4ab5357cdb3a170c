"""YuNet (Wu, Peng and Yu 2023, "YuNet: A Tiny Millisecond-level Face Detector"), the
detector behind OpenCV's ``cv2.FaceDetectorYN``: a box, a score and five landmarks per face.

Its ONNX files are vendored with this package (``yunet_weights/``: Apache-2.0, from
``ShiqiYu/libfacedetection.train``; see ``PROVENANCE.md`` there): the one exception to "no
weights in the repository". Their sha256 is checked when they are loaded.

The steps, each the same arithmetic as OpenCV's ``FaceDetectorYN``
(``modules/objdetect/src/face_detect.cpp``), so that the two agree on the same file and
image:

1. **Letterbox** (ours; OpenCV leaves sizing to the caller): an image larger than the input
   size (``DetectorConfig.input_size``) is resized (bilinear) to fit it with its aspect kept;
   a smaller one is left as it is (YuNet finds faces from about 10 pixels up, and enlarging
   a photo only adds pixels it cannot use). The image sits at the top-left of a zero canvas
   of the input size rounded up to a multiple of 32, as OpenCV pads (``padWithDivisor``).
   Every image of a batch gets the same canvas, so a batch is one network call and an image's
   faces do not depend on its batch companions.
2. **Network**: raw BGR pixels 0–255, NCHW, no normalisation (``blobFromImage`` defaults);
   images come in RGB, so the channels are swapped here.
3. **Decode**, per stride 8, 16, 32 on the canvas's grid (row-major): score
   ``sqrt(clip(cls, 0, 1) · clip(obj, 0, 1))``, kept where ``score ≥ threshold``; box centre
   ``(col + dx, row + dy) · stride``, size ``exp(dw, dh) · stride``; landmarks
   ``(col + kx, row + ky) · stride``.
4. **NMS** as ``cv::dnn::NMSBoxes`` on integer boxes (``int()`` of x, y, width, height),
   only when there are two or more candidates: candidates scoring strictly above the
   threshold, sorted by score (stable), the first ``top_k``, greedy IoU at
   ``nms_threshold`` (OpenCV's default 0.3).
5. **Limits** (not in OpenCV): the boxes and landmarks are mapped back to image pixels, faces
   whose shorter box side is below ``min_face_size`` are dropped, then at most ``max_faces``
   are kept, highest score first.

The landmarks are, in image coordinates, the image-left eye, the image-right eye, the nose,
the image-left and the image-right mouth corner: the ArcFace template's order, no swap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from model_export.files import sha256_file
from service.errors import ModelPackError
from service.inference.onnxruntime_runtime import session_options, varying_shape_providers
from service.vision.detectors.base import DEFAULT_THRESHOLDS, DetectorConfig, RGBImage
from service.vision.faces import DetectedFace

__all__ = [
    "YUNET_DEFAULT_FILE",
    "YUNET_FILES",
    "YUNET_LICENSE",
    "YuNet",
    "opencv_nms",
    "yunet_model_file",
]

F32 = npt.NDArray[np.float32]

# The vendored files: name → (sha256, bytes). Upstream: ShiqiYu/libfacedetection.train,
# commit 0047ac24afb1a50a0c6105001c89d1b5b805dbf1, folder onnx/ (see PROVENANCE.md).
YUNET_FILES = {
    "yunet_s_640_640.onnx": (
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        232_589,
    ),
    "yunet_s_dynamic.onnx": (
        "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3",
        237_823,
    ),
}
YUNET_DEFAULT_FILE = "yunet_s_dynamic.onnx"  # free batch, height and width
YUNET_LICENSE = (
    "YuNet weights from ShiqiYu/libfacedetection.train (Apache-2.0; Copyright OpenMMLab and "
    "Shiqi Yu), vendored with facerec."
)
_WEIGHTS_DIR = Path(__file__).with_name("yunet_weights")

STRIDES = (8, 16, 32)
DIVISOR = 32  # the canvas is padded to a multiple of this (OpenCV's ``divisor``)
DEFAULT_THRESHOLD = DEFAULT_THRESHOLDS["yunet"]
DEFAULT_NMS_THRESHOLD = 0.3  # cv2.FaceDetectorYN's default
DEFAULT_TOP_K = 5000  # cv2.FaceDetectorYN's default


def yunet_model_file(name: str = YUNET_DEFAULT_FILE) -> Path:
    """A vendored YuNet file, its sha256 checked against the recorded one."""
    if name not in YUNET_FILES:
        raise ModelPackError(f"no vendored YuNet file {name!r}: one of {', '.join(YUNET_FILES)}")
    path = _WEIGHTS_DIR / name
    if not path.is_file():
        raise ModelPackError(f"the vendored YuNet file {path} is missing (broken install?)")
    expected, _ = YUNET_FILES[name]
    digest = sha256_file(path)
    if digest != expected:
        raise ModelPackError(
            f"the vendored YuNet file {path} has sha256 {digest[:12]}…, expected "
            f"{expected[:12]}… (modified or corrupt)"
        )
    return path


def padded(side: int) -> int:
    """``side`` rounded up to a multiple of 32, as OpenCV pads its input."""
    return ((side - 1) // DIVISOR + 1) * DIVISOR


def opencv_nms(
    boxes: F32,
    scores: F32,
    score_threshold: float,
    nms_threshold: float,
    top_k: int = 0,
) -> npt.NDArray[np.intp]:
    """``cv::dnn::NMSBoxes`` on ``(N, 4)`` ``x, y, width, height`` boxes (eta 1).

    The boxes are made integer as ``cv::Rect2i(int(x), int(y), int(w), int(h))`` does
    (truncation toward zero); scores strictly above ``score_threshold`` take part, in
    descending order (stable), the first ``top_k`` of them (``top_k ≤ 0``: all); a box is
    kept when its IoU (integer areas, no ``+1``) with every kept box is at most
    ``nms_threshold``. Returns the kept indices in that order.
    """
    ints = np.trunc(boxes).astype(np.int64)
    x1, y1 = ints[:, 0], ints[:, 1]
    x2, y2 = x1 + ints[:, 2], y1 + ints[:, 3]
    areas = ints[:, 2] * ints[:, 3]
    candidates = np.flatnonzero(scores > np.float32(score_threshold))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k > 0:
        order = order[:top_k]
    keep: list[int] = []
    for i in order.tolist():
        if keep:
            kept = np.asarray(keep)
            w = np.minimum(x2[i], x2[kept]) - np.maximum(x1[i], x1[kept])
            h = np.minimum(y2[i], y2[kept]) - np.maximum(y1[i], y1[kept])
            inter = np.where((w > 0) & (h > 0), w * h, 0).astype(np.float64)
            total = (areas[i] + areas[kept]).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                iou = np.where(total <= 0, 1.0, inter / (total - inter))
            # OpenCV: overlap = 1.f - float(jaccardDistance), jaccardDistance = 1 - iou
            overlap = np.float32(1.0) - (1.0 - iou).astype(np.float32)
            if np.any(overlap > np.float32(nms_threshold)):
                continue
        keep.append(i)
    return np.asarray(keep, dtype=np.intp)


class YuNet:
    """YuNet on ONNX Runtime behind the detector interface.

    ``model`` is the ONNX file (path or bytes; default: the vendored dynamic file). A model
    with a fixed spatial input (``yunet_s_640_640.onnx``) runs at that size whatever
    ``config.input_size`` says; a fixed batch of 1 runs one image per call. ``top_k``
    bounds the candidates entering NMS (OpenCV's ``top_k``); ``max_batch`` the images per
    network call; ``config.threshold`` unset means 0.6 and ``config.nms_threshold`` unset
    OpenCV's 0.3.
    """

    name = "yunet"

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | None = None,
        config: DetectorConfig | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        *,
        top_k: int = DEFAULT_TOP_K,
        max_batch: int = 8,
        threads: int = 0,
        spinning: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.config = config or DetectorConfig()
        self.threshold = (
            DEFAULT_THRESHOLD if self.config.threshold is None else float(self.config.threshold)
        )
        self.nms_threshold = (
            DEFAULT_NMS_THRESHOLD
            if self.config.nms_threshold is None
            else float(self.config.nms_threshold)
        )
        self.top_k = top_k
        options = session_options(threads, spinning)
        source = os.fspath(yunet_model_file()) if model is None else model
        if not isinstance(source, bytes):
            source = os.fspath(source)
        try:
            self._session = ort.InferenceSession(
                source, options, providers=varying_shape_providers(providers)
            )
        except Exception as exc:  # onnxruntime's errors are untyped
            raise ModelPackError(f"YuNet could not load its network: {exc}") from exc

        inp = self._session.get_inputs()
        names = {o.name for o in self._session.get_outputs()}
        self._output_names = [
            f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES
        ]
        missing = [n for n in self._output_names if n not in names]
        if len(inp) != 1 or len(inp[0].shape) != 4 or missing:
            raise ModelPackError(
                "not a YuNet network: one NCHW input and outputs cls/obj/bbox/kps_8/16/32 "
                f"expected (missing {', '.join(missing) or 'none'})"
            )
        self._input_name: str = inp[0].name
        shape = inp[0].shape
        height, width = _fixed(shape[2]), _fixed(shape[3])
        if height and width:
            self.input_size: tuple[int, int] = (width, height)
        else:
            self.input_size = (int(self.config.input_size[0]), int(self.config.input_size[1]))
        if min(self.input_size) < DIVISOR:
            raise ValueError(f"YuNet input size {self.input_size} must be at least 32×32")
        self.canvas = (padded(self.input_size[0]), padded(self.input_size[1]))
        if height and width and self.canvas != self.input_size:
            raise ModelPackError(f"YuNet input {self.input_size} is not a multiple of 32")
        batch = _fixed(shape[0])
        self._batch = batch if batch else max(1, max_batch)
        self._pad_batch = batch > 1

    # -- 1. letterbox ---------------------------------------------------------------------

    def _letterbox(self, image: RGBImage, out: F32) -> tuple[float, float]:
        """Write the BGR canvas into ``out`` (3, H, W); returns the x and y scales."""
        height, width = int(image.shape[0]), int(image.shape[1])
        in_w, in_h = self.input_size
        scale = min(in_w / width, in_h / height, 1.0)
        pixels: npt.NDArray[np.generic] = image
        new_w, new_h = width, height
        if scale < 1.0:
            new_w = min(in_w, max(1, round(width * scale)))
            new_h = min(in_h, max(1, round(height * scale)))
            pixels = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        out.fill(0.0)
        out[:, :new_h, :new_w] = pixels[:, :, ::-1].transpose(2, 0, 1)
        return new_w / width, new_h / height

    # -- 2. network -----------------------------------------------------------------------

    def raw_outputs(self, blob: F32) -> list[dict[str, F32]]:
        """The network's outputs per image of ``blob`` (N, 3, H, W), by output name."""
        count = len(blob)
        results: list[dict[str, F32]] = []
        step = 1 if self._batch == 1 else self._batch
        for start in range(0, count, step):
            part = blob[start : start + step]
            real = len(part)
            if self._pad_batch and real < self._batch:
                part = np.concatenate(
                    [part, np.zeros((self._batch - real, *part.shape[1:]), part.dtype)]
                )
            outs = self._session.run(self._output_names, {self._input_name: part})
            for b in range(real):
                results.append(
                    {
                        n: np.asarray(o[b], np.float32)
                        for n, o in zip(self._output_names, outs, strict=True)
                    }
                )
        return results

    # -- 3. decode and 4. NMS -------------------------------------------------------------

    def decode(self, outs: dict[str, F32]) -> F32:
        """One image's faces on the canvas, as OpenCV returns them: ``(K, 15)`` rows of
        ``x, y, w, h``, five landmarks ``x, y``, score; after NMS, best first."""
        canvas_w, canvas_h = self.canvas
        rows_out = []
        for stride in STRIDES:
            cols = canvas_w // stride
            rows = canvas_h // stride
            cls = np.clip(outs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
            obj = np.clip(outs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
            score = np.sqrt(cls * obj).astype(np.float32)
            if score.size != rows * cols:
                raise ModelPackError(
                    f"YuNet stride {stride}: {score.size} scores for a {cols}×{rows} grid"
                )
            keep = np.flatnonzero(score >= np.float32(self.threshold))
            if keep.size == 0:
                continue
            r, c = np.divmod(keep, cols)
            col = c.astype(np.float32)[:, None]
            row = r.astype(np.float32)[:, None]
            step = np.float32(stride)
            bbox = outs[f"bbox_{stride}"].reshape(-1, 4)[keep]
            kps = outs[f"kps_{stride}"].reshape(-1, 10)[keep]
            centre = (np.concatenate([col, row], axis=1) + bbox[:, :2]) * step
            size = np.exp(bbox[:, 2:4]) * step
            corner = centre - size / np.float32(2.0)
            points = kps.reshape(-1, 5, 2).copy()
            points[:, :, 0] += col
            points[:, :, 1] += row
            points *= step
            rows_out.append(
                np.concatenate(
                    [corner, size, points.reshape(-1, 10), score[keep, None]], axis=1
                ).astype(np.float32)
            )
        if not rows_out:
            return np.zeros((0, 15), np.float32)
        faces = np.concatenate(rows_out)
        if len(faces) > 1:
            keep_idx = opencv_nms(
                faces[:, :4], faces[:, 14], self.threshold, self.nms_threshold, self.top_k
            )
            faces = faces[keep_idx]
        return faces

    # -- 5. limits ------------------------------------------------------------------------

    def _faces(self, faces: F32, sx: float, sy: float) -> list[DetectedFace]:
        """Canvas rows → faces in image pixels, ``min_face_size`` and ``max_faces`` applied."""
        scale = np.array([sx, sy], np.float32)
        corner = faces[:, 0:2] / scale
        size = faces[:, 2:4] / scale
        landmarks = faces[:, 4:14].reshape(-1, 5, 2) / scale
        boxes = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
        keep = np.arange(len(faces))
        if self.config.min_face_size > 0:
            keep = keep[np.minimum(size[:, 0], size[:, 1]) >= self.config.min_face_size]
        if self.config.max_faces:
            keep = keep[: self.config.max_faces]
        return [
            DetectedFace(
                bbox=boxes[i],
                score=float(faces[i, 14]),
                landmarks=landmarks[i].astype(np.float32),
            )
            for i in keep.tolist()
        ]

    def detect(self, images: Sequence[RGBImage]) -> list[list[DetectedFace]]:
        """Faces per image (RGB, uint8, HWC), each list sorted by descending score."""
        if not images:
            return []
        canvas_w, canvas_h = self.canvas
        blob = np.empty((len(images), 3, canvas_h, canvas_w), np.float32)
        scales = [self._letterbox(image, blob[k]) for k, image in enumerate(images)]
        raw = self.raw_outputs(blob)
        return [
            self._faces(self.decode(outs), sx, sy)
            for outs, (sx, sy) in zip(raw, scales, strict=True)
        ]


def _fixed(dim: object) -> int:
    """A fixed, positive ONNX dimension, or 0 for a symbolic / unknown one."""
    return dim if isinstance(dim, int) and dim > 0 else 0
