"""``facerec bench pipeline``: images/s and faces/s end to end, beside insightface's path.

Ours: the service's :class:`~service.recognition.pipeline.AsyncPipeline` (decode, detect,
align, embed, with embedding batched across concurrent requests), ``concurrency`` images in
flight.

insightface's path, as its ``FaceAnalysis`` runs recognition: ``cv2.imdecode``, the same
detector (so both see the same faces), then per face ``norm_crop`` + ``ArcFaceONNX.get``
on the same recognizer file — one face per model call. Also reported: the recognition stage
alone (align + embed of the already-detected faces), where batching is what differs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.recognition.pipeline import AsyncPipeline, Pipeline
from service.vision.align import ARCFACE_TEMPLATE, align_faces

_TEMPLATE = ARCFACE_TEMPLATE.astype(np.float32)


@dataclass(frozen=True)
class Figure:
    seconds: float
    images: int
    faces: int

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds


async def _ours(
    pipeline: Pipeline, images: list[bytes], concurrency: int, max_batch: int, workers: int
) -> Figure:
    batched = AsyncPipeline(
        pipeline,
        embed_max_batch=max_batch,
        embed_max_wait_ms=2.0,
        detect_workers=workers,
        embed_workers=min(workers, 2),
    )
    await batched.start()
    gate = asyncio.Semaphore(concurrency)
    faces = 0

    async def one(data: bytes) -> None:
        nonlocal faces
        async with gate:
            found = len(await batched.faces(data))
        faces += found

    try:
        await one(images[0])  # warm up
        faces = 0
        started = time.perf_counter()
        await asyncio.gather(*(one(d) for d in images))
        elapsed = time.perf_counter() - started
    finally:
        await batched.stop()
    return Figure(elapsed, len(images), faces)


def _theirs(
    pipeline: Pipeline, images: list[bytes], recognizer: Path, gpu: bool
) -> tuple[Figure, Figure]:
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    model = ArcFaceONNX(model_file=str(recognizer))
    model.prepare(0 if gpu else -1)  # ctx_id ≥ 0: ONNX Runtime's CUDA provider, as insightface
    model.get(np.zeros((112, 112, 3), np.uint8), InsightFace(kps=_TEMPLATE))  # warm up
    faces = 0
    recognition = 0.0
    started = time.perf_counter()
    for data in images:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError("an image of the benchmark set does not decode")
        rgb = np.ascontiguousarray(bgr[:, :, ::-1]).astype(np.uint8)
        detected = pipeline.detector.detect([rgb])[0]
        t0 = time.perf_counter()
        for face in detected:
            model.get(bgr, InsightFace(kps=face.landmarks))
        recognition += time.perf_counter() - t0
        faces += len(detected)
    total = time.perf_counter() - started
    return Figure(total, len(images), faces), Figure(recognition, len(images), faces)


def _our_recognition(pipeline: Pipeline, images: list[bytes]) -> Figure:
    decoded = [pipeline.decode(d) for d in images]
    detected = [pipeline.detector.detect([img])[0] for img in decoded]
    started = time.perf_counter()
    crops = [align_faces(img, faces) for img, faces in zip(decoded, detected, strict=True)]
    stacked = np.concatenate([c for c in crops if len(c)])
    pipeline.embedder.embed(stacked)
    return Figure(time.perf_counter() - started, len(images), len(stacked))


def bench_pipeline(
    pack: Path,
    image_paths: list[Path],
    repeat: int,
    concurrency: int,
    device: str,
    max_batch: int,
    runtime: str = "onnxruntime",
    precision: str = "fp16",
    workers: int = 1,
) -> dict[str, Any]:
    from service.models.loading import build_detector, build_embedder
    from service.models.packs import load_pack
    from service.vision.detectors.base import DetectorConfig

    loaded = load_pack(pack)
    detector = build_detector(loaded, DetectorConfig(threshold=0.7), device)
    embedder = build_embedder(
        loaded, device, max_batch=max_batch, runtime=runtime, precision=precision, lanes=2
    )
    pipeline = Pipeline(detector, embedder)
    images = [p.read_bytes() for p in image_paths] * repeat
    ours = asyncio.run(_ours(pipeline, images, concurrency, max_batch, workers))
    our_rec = _our_recognition(pipeline, images)
    recognizer = pipeline_recognizer(pack)
    theirs, their_rec = _theirs(pipeline, images, recognizer, device != "cpu")

    def row(f: Figure) -> dict[str, float]:
        return {
            "seconds": round(f.seconds, 3),
            "images": f.images,
            "faces": f.faces,
            "images_per_s": round(f.images_per_s, 2),
            "faces_per_s": round(f.faces_per_s, 2),
        }

    return {
        "pack": str(pack),
        "images": [p.name for p in image_paths],
        "repeat": repeat,
        "concurrency": concurrency,
        "device": device,
        "runtime": f"{embedder.runtime.name} {embedder.runtime.precision} on "
        f"{embedder.runtime.device}",
        "detect_workers": workers,
        "end_to_end": {
            "ours": row(ours),
            "insightface": row(theirs),
            "ratio": round(ours.images_per_s / theirs.images_per_s, 2),
        },
        "recognition_only": {
            "ours": row(our_rec),
            "insightface": row(their_rec),
            "ratio": round(our_rec.faces_per_s / their_rec.faces_per_s, 2),
        },
    }


def pipeline_recognizer(pack: Path) -> Path:
    from service.models.packs import load_pack

    loaded = load_pack(pack)
    return loaded.path(loaded.manifest.recognizer.file)
