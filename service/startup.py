"""The lifespan's work, composition only: from the settings, load the pack, open the gallery,
build the use cases (:class:`~service.recognition.usecases.Recognition`) and start their
batchers; and undo it."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path

from service.api.state import ModelInfo, Services
from service.errors import ModelPackError
from service.gallery.open import open_gallery
from service.models.loading import build_detector, build_embedder
from service.models.packs import ModelPack, load_pack
from service.recognition.matching import Threshold
from service.recognition.pipeline import AsyncPipeline, Pipeline
from service.recognition.search import GallerySearch
from service.recognition.usecases import Recognition
from service.settings import Settings
from service.vision.decode import DecodeLimits
from service.vision.detectors.base import DetectorConfig

log = logging.getLogger("service")


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


def model_info(pack: ModelPack, pipeline: Pipeline, threshold: Threshold) -> ModelInfo:
    """What /info reports of the models ``pipeline`` runs from ``pack``."""
    manifest, embedder = pack.manifest, pipeline.embedder
    return ModelInfo(
        pack=pack.name,
        detector=pipeline.detector.name,
        detector_license=manifest.detector.license,
        license=manifest.license,
        recognizer=f"{manifest.recognizer.arch} ({manifest.recognizer.file.path})",
        runtime=embedder.runtime.name,
        device=embedder.runtime.device,
        precision=embedder.runtime.precision,
        embedding_size=embedder.embedding_size,
        threshold=threshold.value,
        threshold_source=threshold.source,
        untrained=manifest.recognizer.untrained,
    )


async def startup(services: Services) -> None:
    """Load the pack, open the gallery, build and start the use cases' batchers."""
    settings, metrics = services.settings, services.metrics
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
        observe=metrics.batch_observer,
    )
    search = GallerySearch(max_queue=settings.max_queue, on_batch=metrics.batch_observer("search"))
    threshold = Threshold.of(settings.verify_threshold, manifest.verify_threshold)
    recognition = Recognition(batched, search, threshold, settings.max_faces)
    await recognition.start()
    embedder = pipeline.embedder
    gallery = await asyncio.to_thread(
        open_gallery, settings, pack.model_id, embedder.embedding_size
    )
    metrics.track_queue("detect", lambda: batched.detect_batcher.queue_depth)
    metrics.track_queue("embed", lambda: batched.embed_batcher.queue_depth)
    metrics.track_queue("search", lambda: search.queue_depth)
    metrics.track_gallery(gallery.size)
    services.recognition = recognition
    services.gallery = gallery
    services.model = model_info(pack, pipeline, threshold)
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
    if services.recognition is not None:
        await services.recognition.stop()
    if services.gallery is not None:
        services.gallery.close()
