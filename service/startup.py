"""The lifespan's work: load the pack, start the batchers, open the gallery; and undo it."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path

import numpy as np

from service.api.state import ModelInfo, Services
from service.errors import ModelPackError
from service.gallery.open import open_gallery
from service.gallery.types import Match
from service.inference.batcher import MicroBatcher
from service.models.loading import build_detector, build_embedder
from service.models.packs import ModelPack, load_pack
from service.pipeline import AsyncPipeline, Pipeline
from service.settings import Settings
from service.vision.decode import DecodeLimits
from service.vision.detectors.base import DetectorConfig

log = logging.getLogger("service")

_SEARCH_K = 100  # the largest top_k a request may ask for


def find_pack(settings: Settings) -> Path:
    """The configured pack, else the only pack in the packs folder, else a clear error."""
    if settings.pack is not None:
        return settings.pack
    packs = sorted(p.parent for p in settings.packs_dir.glob("*/manifest.json"))
    if len(packs) == 1:
        return packs[0]
    if len(packs) > 1:
        names = ", ".join(p.name for p in packs)
        raise ModelPackError(f"several packs in {settings.packs_dir} ({names}): set FACEREC_PACK")
    raise ModelPackError(
        f"no model pack: set FACEREC_PACK, or put one in {settings.packs_dir} with `facerec "
        "models fetch antelopev2` (internet), `facerec models import PATH`, or `facerec models "
        "build-test-pack packs/test` (no download; untrained recognizer)"
    )


def choose_runtime(settings: Settings) -> str:
    if settings.runtime != "auto":
        return settings.runtime
    gpu = settings.device != "cpu"
    return "tensorrt" if gpu and importlib.util.find_spec("tensorrt") else "onnxruntime"


def detector_config(settings: Settings) -> DetectorConfig:
    """One face more than ``max_faces`` is kept, so that an image over the limit is told
    apart and refused (``too_many_faces``) rather than silently cut."""
    return DetectorConfig(
        threshold=settings.det_threshold,
        min_face_size=settings.min_face_size,
        max_faces=settings.max_faces + 1,
        input_size=(settings.det_input_size, settings.det_input_size),
    )


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits(
        settings.max_image_bytes, settings.max_image_pixels, settings.max_image_side
    )


def load_models(settings: Settings) -> tuple[ModelPack, Pipeline, str]:
    pack = load_pack(find_pack(settings), verify=True)
    runtime = choose_runtime(settings)
    detector = build_detector(
        pack,
        detector_config(settings),
        settings.detector_device or settings.device,
        landmarks=settings.landmarks,
        threads=settings.detect_threads,
        spinning=settings.ort_spinning,
    )
    embedder = build_embedder(
        pack,
        settings.device,
        settings.threads,
        settings.embed_max_batch,
        runtime=runtime,
        engine_cache=settings.engine_cache_dir,
        precision=settings.precision,
        torch_checkpoint=settings.torch_checkpoint,
        cuda_graphs=settings.torch_cuda_graphs,
        lanes=settings.embed_workers,
        compile_model=settings.torch_compile,
        spinning=settings.ort_spinning,
    )
    return pack, Pipeline(detector, embedder, decode_limits(settings)), runtime


async def startup(services: Services) -> None:
    settings = services.settings
    pack, pipeline, runtime = await asyncio.to_thread(load_models, settings)
    manifest = pack.manifest
    if manifest.recognizer.untrained:
        log.warning(
            "THE RECOGNIZER OF PACK %r IS UNTRAINED (random-initialised): its similarities "
            "mean nothing about faces. Use it for tests and trials only.",
            pack.name,
        )
    log.info("model license: %s", manifest.license)
    if manifest.detector.license:
        log.info("detector license: %s", manifest.detector.license)
    batched = AsyncPipeline(
        pipeline,
        detect_max_batch=settings.detect_max_batch,
        detect_max_wait_ms=settings.detect_max_wait_ms,
        embed_max_batch=settings.embed_max_batch,
        embed_max_wait_ms=settings.embed_max_wait_ms,
        max_queue=settings.max_queue,
        detect_workers=settings.detect_workers,
        embed_workers=settings.embed_workers,
    )
    metrics = services.metrics
    batched.detect_batcher._on_batch = metrics.batch_observer("detect")
    batched.embed_batcher._on_batch = metrics.batch_observer("embed")
    await batched.start()
    embedder = pipeline.embedder
    gallery = await asyncio.to_thread(
        open_gallery, settings, pack.model_id, embedder.embedding_size
    )

    def search_batch(items: list[np.ndarray]) -> list[list[Match]]:
        return gallery.search(np.stack(items), _SEARCH_K)

    searcher: MicroBatcher[np.ndarray, list[Match]] = MicroBatcher(
        "search",
        search_batch,
        max_batch=16,  # a flat scan is memory-bound: 8–16 queries per pass is the sweet spot
        max_wait_ms=1.0,
        max_queue=settings.max_queue,
        on_batch=metrics.batch_observer("search"),
    )
    await searcher.start()
    metrics.track_queue("detect", lambda: batched.detect_batcher.queue_depth)
    metrics.track_queue("embed", lambda: batched.embed_batcher.queue_depth)
    metrics.track_queue("search", lambda: searcher.queue_depth)
    metrics.track_gallery(gallery.size)
    threshold = manifest.verify_threshold
    services.pipeline = batched
    services.gallery = gallery
    services.extra["searcher"] = searcher
    services.model = ModelInfo(
        pack=pack.name,
        detector=pipeline.detector.name,
        detector_license=manifest.detector.license,
        license=manifest.license,
        recognizer=f"{manifest.recognizer.arch} ({manifest.recognizer.file.path})",
        runtime=embedder.runtime.name,
        device=embedder.runtime.device,
        precision=embedder.runtime.precision,
        embedding_size=embedder.embedding_size,
        threshold=settings.verify_threshold
        if settings.verify_threshold is not None
        else threshold.value,
        threshold_source="settings" if settings.verify_threshold is not None else threshold.source,
        untrained=manifest.recognizer.untrained,
    )
    services.ready = True
    log.info(
        "ready: pack %s (%s + %s on %s %s), gallery %d identities",
        pack.name,
        pipeline.detector.name,
        manifest.recognizer.arch,
        runtime,
        embedder.runtime.device,
        gallery.size(),
    )


async def shutdown(services: Services) -> None:
    services.ready = False
    searcher = services.extra.get("searcher")
    if services.pipeline is not None:
        await services.pipeline.stop()
    if searcher is not None:
        await searcher.stop()
    if services.gallery is not None:
        services.gallery.close()
