"""The web console: static files (``service/console/``) mounted at ``/console``.

The console is plain HTML, CSS and ES modules, with no build step and nothing fetched from
elsewhere. It talks to the service only through the public HTTP API, with the user's API key
in the ``X-API-Key`` header, so it can do nothing that key could not. Its files hold no data
and need no key; they are mounted outside the OpenAPI document (a mount, not an operation).

Every answer carries a strict Content-Security-Policy: scripts, styles and API calls from this
origin only, images from this origin and the ``blob:`` URLs of photos the user picked, no
framing. Identity names are user input; the console writes them as text, never as markup.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

__all__ = ["CONSOLE_DIR", "CONSOLE_PATH", "mount_console"]

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONSOLE_PATH = "/console"

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob: data:; media-src 'self' blob:; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (ETag): a new version shows at the next load
}


class ConsoleFiles(StaticFiles):
    """``StaticFiles`` (``index.html`` for the folder) with the console's security headers."""

    route: Mount | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the request metrics label a request by its route's path: "/console", not "unmatched"
        if self.route is not None:
            scope["route"] = self.route
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/console/`` (``/console`` redirects there)."""
    files = ConsoleFiles(directory=CONSOLE_DIR, html=True)
    files.route = Mount(CONSOLE_PATH, app=files, name="console")
    app.router.routes.append(files.route)
