"""What the pure-ASGI middlewares share (body limit, request timeout, shutdown cutoff): knowing
whether the response has started, and answering with the service's error body when not."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from service.api.errors import error_response

__all__ = ["StartTracker", "send_error"]


class StartTracker:
    """Wraps ``send`` and remembers whether the response's status line has gone out: a
    middleware may answer with its own error only before that."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def send_error(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str, **headers: str
) -> None:
    """Answer ``status`` with the error body ``{"error": {"code", "message"}}``."""
    await error_response(status, code, message, **headers)(scope, receive, send)
