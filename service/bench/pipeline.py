"""``facerec bench pipeline``: images/s and faces/s end to end, beside insightface's path.

Ours: the service's :class:`~service.recognition.pipeline.AsyncPipeline` (decode, detect,
align, embed, with embedding batched across concurrent requests), ``concurrency`` images in
flight, on the runtime asked for.

insightface's path, as its ``FaceAnalysis`` runs recognition: ``cv2.imdecode``, the same
detector (so both see the same faces), then per face ``norm_crop`` + ``ArcFaceONNX.get``
on ONNX Runtime (default session, as insightface makes it) — one face per model call — on the
pack's recognizer, or on ``baseline`` (e.g. the FP32 file an INT8 pack was quantized from).
Also reported: the recognition stage alone (align + embed of the already-detected faces), and
the lowest cosine between our embeddings and insightface's of the same faces.

``rounds`` alternates the two paths that many times and reports the figures summed over the
rounds with the median of the per-round ratios, so that load from other processes on a
shared machine falls on both. Beside the wall-clock figures: CPU milliseconds per image
(this process, all threads) and their ratio (``cpu_ratio``, insightface's over ours): the work
each path does, steadier than wall time where other processes share the cores (insightface's
ONNX Runtime session spins its threads while waiting, as ONNX Runtime does by default, and
that spinning counts as its CPU time).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
    cpu_seconds: float = 0.0  # this process's CPU time (all threads) over the same span

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds


async def _ours(
    pipeline: Pipeline,
    images: list[bytes],
    concurrency: int,
    max_batch: int,
    workers: int,
    embed_workers: int,
) -> Figure:
    batched = AsyncPipeline(
        pipeline,
        embed_max_batch=max_batch,
        embed_max_wait_ms=2.0,
        detect_workers=workers,
        embed_workers=embed_workers,
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
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(d) for d in images))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await batched.stop()
    return Figure(elapsed, len(images), faces, cpu)


def _insightface_model(recognizer: Path, gpu: bool) -> Any:
    from insightface.app.common import Face as InsightFace
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    model = ArcFaceONNX(model_file=str(recognizer))
    model.prepare(0 if gpu else -1)  # ctx_id ≥ 0: ONNX Runtime's CUDA provider, as insightface
    model.get(np.zeros((112, 112, 3), np.uint8), InsightFace(kps=_TEMPLATE))  # warm up
    return model


def _theirs(pipeline: Pipeline, images: list[bytes], model: Any) -> tuple[Figure, Figure]:
    from insightface.app.common import Face as InsightFace

    faces = 0
    recognition = recognition_cpu = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    for data in images:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError("an image of the benchmark set does not decode")
        rgb = np.ascontiguousarray(bgr[:, :, ::-1]).astype(np.uint8)
        detected = pipeline.detector.detect([rgb])[0]
        t0, c0 = time.perf_counter(), time.process_time()
        for face in detected:
            model.get(bgr, InsightFace(kps=face.landmarks))
        recognition += time.perf_counter() - t0
        recognition_cpu += time.process_time() - c0
        faces += len(detected)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    return (
        Figure(total, len(images), faces, cpu),
        Figure(recognition, len(images), faces, recognition_cpu),
    )


def _our_recognition(pipeline: Pipeline, images: list[bytes]) -> Figure:
    decoded = [pipeline.decode(d) for d in images]
    detected = [pipeline.detector.detect([img])[0] for img in decoded]
    started, cpu = time.perf_counter(), time.process_time()
    crops = [align_faces(img, faces) for img, faces in zip(decoded, detected, strict=True)]
    stacked = np.concatenate([c for c in crops if len(c)])
    pipeline.embedder.embed(stacked)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Figure(elapsed, len(images), len(stacked), cpu)


def _agreement(pipeline: Pipeline, images: list[bytes], model: Any) -> float:
    """The lowest cosine between our embedding and insightface's of the same face."""
    from insightface.app.common import Face as InsightFace

    lowest = 1.0
    for data in dict.fromkeys(images):  # each distinct photo once
        image = pipeline.decode(data)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        detected = pipeline.detector.detect([image])[0]
        if not detected:
            continue
        ours = pipeline.embedder.embed(align_faces(image, detected))
        for face, mine in zip(detected, ours, strict=True):
            theirs = np.asarray(model.get(bgr, InsightFace(kps=face.landmarks)), np.float32)
            lowest = min(lowest, float(mine @ theirs) / float(np.linalg.norm(theirs)))
    return lowest


def _sum(figures: list[Figure]) -> Figure:
    return Figure(
        sum(f.seconds for f in figures),
        sum(f.images for f in figures),
        sum(f.faces for f in figures),
        sum(f.cpu_seconds for f in figures),
    )


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
    *,
    embed_workers: int | None = None,
    threads: int = 0,
    detect_threads: int = 0,
    spinning: bool = False,
    rounds: int = 1,
    baseline: Path | None = None,
    landmarks: Literal["detector", "onet"] | None = None,
) -> dict[str, Any]:
    from service.models.loading import build_detector, build_embedder
    from service.models.packs import load_pack
    from service.vision.detectors.base import DetectorConfig

    loaded = load_pack(pack)
    # the pack's detector as the service runs it: its threshold and landmark stage
    detector = build_detector(
        loaded, DetectorConfig(), device, landmarks, threads=detect_threads, spinning=spinning
    )
    lanes = embed_workers if embed_workers is not None else min(workers, 2)
    embedder = build_embedder(
        loaded,
        device,
        threads,
        max_batch=max_batch,
        runtime=runtime,
        precision=precision,
        lanes=max(lanes, 2),
        spinning=spinning,
    )
    pipeline = Pipeline(detector, embedder)
    images = [p.read_bytes() for p in image_paths] * repeat
    reference = baseline if baseline is not None else pipeline_recognizer(pack)
    model = _insightface_model(reference, device != "cpu")
    mine: list[Figure] = []
    my_rec: list[Figure] = []
    theirs_all: list[Figure] = []
    their_recs: list[Figure] = []
    for _ in range(max(1, rounds)):
        mine.append(asyncio.run(_ours(pipeline, images, concurrency, max_batch, workers, lanes)))
        my_rec.append(_our_recognition(pipeline, images))
        a, b = _theirs(pipeline, images, model)
        theirs_all.append(a)
        their_recs.append(b)
    ours, our_rec, theirs, their_rec = (_sum(f) for f in (mine, my_rec, theirs_all, their_recs))
    end_ratios = [o.images_per_s / t.images_per_s for o, t in zip(mine, theirs_all, strict=True)]
    rec_ratios = [o.faces_per_s / t.faces_per_s for o, t in zip(my_rec, their_recs, strict=True)]

    def row(f: Figure) -> dict[str, float]:
        return {
            "seconds": round(f.seconds, 3),
            "images": f.images,
            "faces": f.faces,
            "images_per_s": round(f.images_per_s, 2),
            "faces_per_s": round(f.faces_per_s, 2),
            "cpu_ms_per_image": round(f.cpu_seconds / max(f.images, 1) * 1000, 1),
        }

    return {
        "pack": str(pack),
        "images": [p.name for p in image_paths],
        "repeat": repeat,
        "concurrency": concurrency,
        "device": device,
        "runtime": f"{embedder.runtime.name} {embedder.runtime.precision} on "
        f"{embedder.runtime.device}",
        "detector": detector.name,
        "detect_workers": workers,
        "embed_workers": lanes,
        "threads": threads,
        "detect_threads": detect_threads,
        "spinning": spinning,
        "rounds": len(mine),
        "insightface_recognizer": reference.name,
        "min_cosine_ours_vs_insightface": round(_agreement(pipeline, images, model), 5),
        "end_to_end": {
            "ours": row(ours),
            "insightface": row(theirs),
            "ratio": round(float(np.median(end_ratios)), 2),
            "ratios_per_round": [round(r, 2) for r in end_ratios],
            "cpu_ratio": round(theirs.cpu_seconds / max(ours.cpu_seconds, 1e-9), 2),
        },
        "recognition_only": {
            "ours": row(our_rec),
            "insightface": row(their_rec),
            "ratio": round(float(np.median(rec_ratios)), 2),
            "ratios_per_round": [round(r, 2) for r in rec_ratios],
            "cpu_ratio": round(their_rec.cpu_seconds / max(our_rec.cpu_seconds, 1e-9), 2),
        },
    }


def pipeline_recognizer(pack: Path) -> Path:
    from service.models.packs import load_pack

    loaded = load_pack(pack)
    return loaded.path(loaded.manifest.recognizer.file)
