"""The whole system as one ASGI app: every function at ``/.netlify/functions/<name>`` and
the admin SPA from ``public/`` at ``/``: the same paths as the Netlify deployment.

Run it with ``python -m shared.devserver`` or behind any ASGI server:
``uvicorn shared.host.asgi:app`` with ``DATABASE_URL`` set.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import functions
from shared import config
from shared.http import FunctionApp, JSONResponse

PREFIX = "/.netlify/functions/"


def discover_functions() -> dict[str, FunctionApp]:
    """Import every module in ``functions/`` and index its app by endpoint name."""
    found: dict[str, FunctionApp] = {}
    for info in pkgutil.iter_modules(functions.__path__):
        module = importlib.import_module(f"functions.{info.name}")
        found[module.app.name] = module.app
    return found


class Gateway:
    """Dispatch by path with one dict lookup (two for a compatible API's paths on the origin,
    ``/v1/...``); everything else is a static file."""

    def __init__(self, apps: dict[str, FunctionApp], static: ASGIApp) -> None:
        self.apps = apps
        self.static = static
        self.origin_paths = {path: app for app in apps.values() for path in app.paths}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path: str = scope["path"]
        if path.startswith(PREFIX):
            name, _, below = path[len(PREFIX) :].partition("/")
            app = self.apps.get(name)
            if app is None or (below.strip("/") and not app.paths):
                response = JSONResponse(
                    {"error": f"No function at {path}.", "code": "NOT_FOUND", "request_id": None},
                    status_code=404,
                )
                await response(scope, receive, send)
                return
            await app(scope, receive, send)
            return
        if (app := self.origin_paths.get(path.rstrip("/"))) is not None:
            await app(scope, receive, send)
            return
        await self.static(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    from shared import db

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Everything loaded so far (modules, the price book, the app) lives as long as the
            # process: keep it out of the garbage collector's full passes. Measured during the
            # streaming benchmark, a full pass over it paused the event loop for about 40 ms.
            gc.freeze()
            # With 100 streams open, each pass over the middle generation (what is alive across
            # requests) paused the loop 4-6 ms, every few seconds: run it ten times less often.
            # The young generation is still collected as usual, so cycles are freed promptly.
            gc.set_threshold(700, 100, 10)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await db.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


# What Netlify adds to the admin screen (netlify.toml), added here when this server serves it.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


# Pages served at a path without ".html", as the site's _redirects has them on Netlify.
PAGES = {"/account": "/account.html"}


class SecureStatic:
    """Static files with the security headers: the admin screen is never framed or sniffed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PAGES:
            scope = {**scope, "path": PAGES[scope["path"]]}

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_secured)


def create_app() -> Gateway:
    static = StaticFiles(directory=config.PROJECT_ROOT / "public", html=True, check_dir=False)
    return Gateway(discover_functions(), SecureStatic(static))


app = create_app()
