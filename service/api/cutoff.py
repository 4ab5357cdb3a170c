"""Requests cut off by a shutdown get a 503 the client can act on, not a bare 500.

When a graceful shutdown outlasts its timeout, uvicorn cancels the requests still running.
Left alone, each ends as ``500 Internal Server Error`` (plain text) with a traceback in the
log, as if the service had a bug. This middleware answers such a request — one whose response
has not started — with ``503 shutting_down`` and ``Retry-After``, in the service's error
format, and logs one line. The request was not acknowledged: like any request whose answer
was lost, a write it carried may have been committed (a gallery write already running in its
thread finishes) or not, but it is whole in the gallery or absent, never half there.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.asgi import StartTracker, send_error

log = logging.getLogger(__name__)


class ShutdownCutoff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = StartTracker(send)
        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if tracked.started:
                raise
            # This task is ending and nothing awaits it but the server, which has moved on to
            # its shutdown: answer instead of propagating the cancellation as a 500.
            log.warning("%s %s cut off by shutdown: 503", scope["method"], scope["path"])
            await send_error(
                scope,
                receive,
                send,
                503,
                "shutting_down",
                "the service is shutting down and cut this request off; retry (a write it "
                "carried may have been applied whole: check before repeating it)",
                **{"Retry-After": "1"},
            )
