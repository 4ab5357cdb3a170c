"""``create_app(settings)``: the FastAPI app; models and gallery load in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api.auth import KeyRing
from service.api.console import mount_console
from service.api.cutoff import ShutdownCutoff
from service.api.errors import install_error_handlers
from service.api.limits import BodySizeLimit
from service.api.metrics import Metrics, RequestTimer
from service.api.ratelimit import RateLimiter
from service.api.routes import embed, health, identify, identities, verify
from service.api.state import Services
from service.api.timeout import RequestTimeout
from service.audit import AuditLog
from service.settings import Settings

log = logging.getLogger("service")

DESCRIPTION = """
Face recognition as the ArcFace paper does it: detect five landmarks, align to the 112×112
template, embed (512-d, L2-normalised), compare by cosine.

Images come as `multipart/form-data` files or as base64 strings in `application/json`.
Errors are `{"error": {"code": "...", "message": "..."}}` with stable codes.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    keyring = KeyRing(settings.api_keys)
    audit = AuditLog(settings.audit_log_path)
    services = Services(settings=settings, metrics=metrics, keyring=keyring, audit=audit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.startup import shutdown, startup

        if keyring.open:
            log.warning(
                "NO API KEYS CONFIGURED: every route is open to anyone who can reach %s:%d. "
                "Set FACEREC_API_KEYS before exposing this service.",
                settings.host,
                settings.port,
            )
        await startup(services)
        try:
            yield
        finally:
            await shutdown(services)
            audit.close()

    app = FastAPI(
        title="facerec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.keyring = keyring
    app.state.ratelimiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    install_error_handlers(app)
    for module in (verify, identify, identities, embed, health):
        app.include_router(module.router)
    if settings.console:
        mount_console(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestTimeout, timeout_s=settings.request_timeout_s)
    # outside the timeout: a shutdown's cancellation is 503 shutting_down, a timeout stays 504
    app.add_middleware(ShutdownCutoff)
    app.add_middleware(RequestTimer, metrics=metrics)
    return app
