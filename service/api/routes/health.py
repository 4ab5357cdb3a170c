"""Liveness, readiness, what is loaded, and Prometheus metrics."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import __version__
from service.api.errors import error_responses
from service.api.schemas import Health, Info
from service.api.state import AppServices

router = APIRouter(tags=["service"])


@router.get("/health/live", response_model=Health, summary="The process is up")
async def live() -> Health:
    return Health(status="ok")


@router.get(
    "/health/ready",
    response_model=Health,
    summary="Models loaded and gallery open",
    responses={503: {"model": Health, "description": "Not ready yet"}},
)
async def ready(services: AppServices) -> Response:
    detail = {
        "models": services.recognition is not None,
        "gallery": services.gallery is not None,
    }
    ok = services.ready and all(detail.values())
    body = Health(status="ok" if ok else "starting", detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/info",
    response_model=Info,
    summary="Model pack, runtime, device, gallery size",
    responses=error_responses(503),
)
async def info(services: AppServices) -> Info:
    model = services.require_model()
    return Info(
        **asdict(model),
        version=__version__,
        gallery_size=services.gallery.size() if services.gallery is not None else 0,
        auth="open" if services.keyring.open else "api_keys",
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text exposition"}},
)
async def metrics(services: AppServices) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
