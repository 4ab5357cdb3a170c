"""Per-request time limit (``FACEREC_REQUEST_TIMEOUT_S``), body upload included.

A request still running after the limit is cancelled and answered 504 ``request_timeout``.
Cancelling frees its place in the batch queues (a waiting item whose caller left is skipped),
but work already handed to a thread (a decode, a model call, a gallery write) runs to its
end: an enrolment or deletion that timed out may still have been committed, so a client
should read the gallery before retrying one. A response already started cannot be replaced;
its connection is closed instead.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.asgi import StartTracker, send_error

log = logging.getLogger(__name__)


class RequestTimeout:
    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = StartTracker(send)
        try:
            await asyncio.wait_for(self.app(scope, receive, tracked), self.timeout_s)
        except asyncio.TimeoutError:
            log.warning(
                "%s %s cancelled after the %.3g s request timeout",
                scope.get("method"),
                scope.get("path"),
                self.timeout_s,
            )
            if tracked.started:
                raise
            await send_error(
                scope,
                receive,
                send,
                504,
                "request_timeout",
                f"the request took longer than {self.timeout_s:g} s; it was cancelled (a "
                "gallery change may still have been committed)",
                Connection="close",
            )
