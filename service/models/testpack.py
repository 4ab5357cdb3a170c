"""A pack that needs no downloaded weights: a real detector + a random-initialised recognizer.

The detector is YuNet (vendored with facerec; the default) or MTCNN (``detector="mtcnn"``).
It runs the whole service end to end. Its recognizer is untrained, so its similarities mean
nothing about faces; the manifest says so and the service repeats it at start and in /info.
"""

from __future__ import annotations

from pathlib import Path

from service.models.build import DETECTORS, UNTRAINED_THRESHOLD, DetectorKind, copy_detector
from service.models.manifest import Manifest, RecognizerSpec, ThresholdSpec
from service.models.packs import ModelPack, file_ref, load_pack, write_manifest

__all__ = ["UNTRAINED_THRESHOLD", "build_test_pack"]


def build_test_pack(
    out: str | Path, arch: str = "r18", seed: int = 0, detector: DetectorKind = "yunet"
) -> ModelPack:
    from model_export.onnx_export import export_onnx, recognizer_from

    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {detector!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    spec = copy_detector(detector, root)
    model, meta = recognizer_from(arch, seed=seed)
    rec = export_onnx(model, meta, root / f"{arch}_random_seed{seed}.onnx")
    manifest = Manifest(
        name=root.name,
        detector=spec,
        recognizer=RecognizerSpec(
            file=file_ref(root, rec),
            arch=arch,
            embedding_size=meta.embedding_size,
            untrained=True,
        ),
        verify_threshold=ThresholdSpec(
            value=UNTRAINED_THRESHOLD,
            note="untrained recognizer: only near-identical crops match; see testpack.py",
        ),
        license=f"Detector: {spec.license} Recognizer: random-initialised here, no license "
        "attached.",
        source=f"facerec models build-test-pack --detector {detector} --arch {arch} --seed {seed}",
    )
    write_manifest(root, manifest)
    return load_pack(root, verify=True)
