"""The function wrapper: one way to write an endpoint.

A module in ``functions/`` defines async handlers and calls :func:`function`::

    async def get(ctx: Ctx) -> dict: ...
    app, handler = function(__name__, GET=get)

``app`` is a plain ASGI callable (mounted by the local server, or run by any ASGI host)
and ``handler`` the AWS Lambda entry point (see ``shared.aws_lambda``). The wrapper owns
what every endpoint shares: request ids, the JSON error envelope, method checks, body
limits, CORS, ``Server-Timing`` and one monitor row per request, written after the
response has gone out.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from mangum import Mangum
from starlette.datastructures import Headers, QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shared import aws_lambda, client_address, config, db, monitor, numbers
from shared.errors import ApiError, bad_request

log = logging.getLogger("kaixu.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_CORS_ALLOW_HEADERS = (
    "authorization, content-type, content-encoding, idempotency-key, x-kaixu-install-id, "
    "x-kaixu-request-id, x-kaixu-app, x-kaixu-build, x-admin-password, x-kaixu-error-token, "
    "x-content-sha1, x-api-key, anthropic-version, anthropic-beta, openai-organization, openai-project, "
    "x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-runtime, "
    "x-stainless-runtime-version, x-stainless-retry-count, x-stainless-timeout, "
    "anthropic-dangerous-direct-browser-access"
)
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
FUNCTIONS_PREFIX = "/.netlify/functions/"


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_json_default, option=orjson.OPT_UTC_Z)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class Ctx:
    """Everything a handler needs about the request, and what it reports to the monitor."""

    __slots__ = (
        "actor",
        "api_key_id",
        "body_size",
        "code",
        "customer_id",
        "deadline",
        "deferred",
        "function",
        "level",
        "model",
        "monitored",
        "provider",
        "request",
        "request_id",
        "started",
        "summary",
    )

    def __init__(self, request: Request, function: str) -> None:
        self.request = request
        self.function = function
        self.started = time.perf_counter()
        incoming = request.headers.get("x-kaixu-request-id") or request.headers.get("x-request-id")
        self.request_id = incoming if incoming and _REQUEST_ID.match(incoming) else os.urandom(16).hex()
        self.customer_id: int | None = None
        self.api_key_id: int | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.summary: str | None = None
        self.code: str | None = None  # the error code answered, for the monitor row
        self.level: str | None = None
        self.actor: str | None = None  # who is acting, once an auth hook has passed
        self.deferred: list[Callable[[], Awaitable[None]]] = []
        self.monitored = False  # set when the handler wrote its own monitor row (gateway SETTLE)
        self.body_size = 0  # bytes of the body read so far
        # The event-loop time at which the host stops this invocation (a Lambda's timeout),
        # None where nothing will: long work (an upstream call) must be over before it.
        left = aws_lambda.remaining_s(request.scope, request.headers)
        self.deadline = None if left is None else asyncio.get_running_loop().time() + left

    @property
    def customer(self) -> int:
        """The customer the auth hook identified (a key's): for handlers behind such a hook."""
        if self.customer_id is None:
            raise RuntimeError(f"{self.function}: no auth hook identified the customer")
        return self.customer_id

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def subpath(self) -> str:
        """The path below the function (``/v1/models`` of ``/.netlify/functions/openai/v1/models``),
        or the whole path when the API origin routed it here directly."""
        path: str = self.request.scope["path"]
        own = f"{FUNCTIONS_PREFIX}{self.function}"
        return path[len(own) :] if path.startswith(own) else path

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    @property
    def app_tag(self) -> str | None:
        return _tag(self.request.headers.get("x-kaixu-app"))

    @property
    def build_tag(self) -> str | None:
        return _tag(self.request.headers.get("x-kaixu-build"))

    @property
    def client_ip(self) -> str:
        """The caller's address: the socket peer (API Gateway's source IP under Lambda), or,
        when that peer is one of ``TRUSTED_PROXIES``, the right-most untrusted hop of the
        ``CLIENT_IP_HEADER`` it forwarded (see ``shared.client_address``)."""
        cfg = config.settings()
        client = self.request.client
        peer = client.host if client else ""
        return client_address.resolve(
            peer, self.request.headers.get(cfg.client_ip_header), cfg.trusted_proxies
        )

    def defer(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` after the response has gone out (e.g. alert webhooks): off the hot path."""
        self.deferred.append(job)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def body(self, limit: int | None = None) -> bytes:
        """The raw body, refused with 413 as soon as it passes ``limit`` bytes."""
        limit = limit or config.settings().max_body_bytes
        declared = self.request.headers.get("content-length")
        if declared and (numbers.whole(declared) or 0) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        self.body_size = size
        return b"".join(chunks)

    async def json(self, limit: int | None = None) -> Any:
        raw = await self.body(limit)
        if not raw.strip():
            raise ApiError(400, "INVALID_JSON", "The request body must be JSON; it was empty.")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "INVALID_JSON", f"The request body is not valid JSON: {exc}.") from exc

    async def json_object(self, limit: int | None = None) -> dict[str, Any]:
        data = await self.json(limit)
        if not isinstance(data, dict):
            raise ApiError(400, "INVALID_JSON", "The request body must be a JSON object.")
        return data


def _tag(value: str | None) -> str | None:
    return value.strip()[:200] or None if value else None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "BODY_TOO_LARGE", f"The request body is larger than {limit} bytes.")


def error_response(error: ApiError, ctx: Ctx) -> JSONResponse:
    body = {"error": error.message, "code": error.code, "request_id": ctx.request_id, **error.extra}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def _cors_headers(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    allowed = config.settings().allowed_origins
    if origin not in allowed and "*" not in allowed:
        return {"vary": "Origin"}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": _CORS_METHODS,
        "access-control-allow-headers": _CORS_ALLOW_HEADERS,
        "access-control-expose-headers": "x-kaixu-request-id, retry-after, ratelimit-limit, "
        "ratelimit-remaining, ratelimit-reset, content-disposition, x-kaixu-max-tokens",
        "access-control-max-age": "86400",
        "vary": "Origin",
    }


Handler = Callable[[Ctx], Awaitable[Response | dict[str, Any] | list[Any]]]
Auth = Callable[[Ctx], str | Awaitable[str]]  # a hook that needs the database is async
# How a function writes an error: the gateway's envelope, or a compatible API's own shape.
ErrorBody = Callable[[ApiError, Ctx], Response]


class FunctionApp:
    """The ASGI app of one function: dispatch by method, wrap in the shared behaviour."""

    def __init__(
        self,
        name: str,
        handlers: dict[str, Handler],
        auth: Auth | None = None,
        scheduled: bool = False,
        monitor_requests: bool = True,
        paths: tuple[str, ...] = (),
        errors: ErrorBody = error_response,
    ) -> None:
        self.name = name
        self.handlers = handlers
        self.auth = auth
        self.scheduled = scheduled  # also run by a schedule, which needs no credential
        self.monitor_requests = monitor_requests  # a monitor row per request (never for preflights)
        # Paths below the function (``/.netlify/functions/openai/v1/models``) and on the API
        # origin itself (``/v1/models``) that it also serves: the dev server and the
        # deploy template route them here, and handlers read ``ctx.subpath``.
        self.paths = paths
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets: nothing to do
            return
        request = Request(scope, receive)
        ctx = Ctx(request, self.name)
        response = await self._respond(ctx)
        headers = response.headers
        headers["x-kaixu-request-id"] = ctx.request_id
        headers["server-timing"] = f"app;dur={ctx.elapsed_ms():.2f}"
        headers.update(_cors_headers(request.headers.get("origin")))
        await response(scope, receive, send)
        if self.monitor_requests and not ctx.monitored and scope["method"] != "OPTIONS":
            await monitor.record_response(ctx, scope["method"], response.status_code)
        for job in ctx.deferred:
            try:
                await job()
            except Exception:
                log.exception("deferred work failed in %s (request %s)", self.name, ctx.request_id)

    async def _respond(self, ctx: Ctx) -> Response:
        method = ctx.request.method
        if method == "OPTIONS":
            return Response(status_code=204)
        handler = self.handlers.get(method)
        try:
            if handler is None:
                allowed = ", ".join(sorted(self.handlers))
                raise ApiError(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"Use {allowed} for {self.name}.",
                    headers={"allow": f"{allowed}, OPTIONS"},
                )
            if self.scheduled and aws_lambda.from_schedule(ctx.request.scope):
                ctx.actor = "schedule"
            elif self.auth is not None:
                actor = self.auth(ctx)
                ctx.actor = await actor if inspect.isawaitable(actor) else actor
            result = await handler(ctx)
            return result if isinstance(result, Response) else JSONResponse(result)
        except ApiError as error:
            return self._failed(ctx, error)
        except ClientDisconnect:
            # Gone before its body was read (a flaky network, a killed app): not our error, so
            # no traceback and no 5xx in the monitor; nothing was admitted.
            ctx.summary = "the client disconnected before its request was read"
            return self._failed(
                ctx, ApiError(499, "CLIENT_DISCONNECTED", "The client closed the connection early.")
            )
        except db.UNAVAILABLE:
            log.warning("database unavailable in %s (request %s)", self.name, ctx.request_id)
            ctx.summary = "database unavailable"
            return self._failed(
                ctx, ApiError(503, "DB_UNAVAILABLE", "The database is unavailable; try again shortly.")
            )
        except Exception as error:
            if db.is_nul_in_text(error):
                return self._failed(
                    ctx, bad_request("body", "Text in this request contains a NUL character (U+0000).")
                )
            log.exception("unhandled error in %s (request %s)", self.name, ctx.request_id)
            ctx.summary = "internal error"
            return self._failed(
                ctx, ApiError(500, "INTERNAL", "Something went wrong on our side; it has been logged.")
            )

    def _failed(self, ctx: Ctx, error: ApiError) -> Response:
        """The error's answer, its code and sentence noted for the monitor row: without them a
        refused call (bad key, cap reached, rate limit...) showed an empty summary. A summary
        the handler set first (what it knew of a 5xx) is kept."""
        ctx.code = error.code
        ctx.summary = ctx.summary or error.message
        return self.errors(error, ctx)


class ByPath:
    """A handler that picks one of ``routes`` by the path below the function (``ctx.subpath``),
    for a function that serves several of another API's paths (the OpenAPI document lists
    each path with its own methods)."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes

    async def __call__(self, ctx: Ctx) -> Response | dict[str, Any] | list[Any]:
        handler = self.routes.get(ctx.subpath.rstrip("/"))
        if handler is None:
            raise ApiError(404, "NOT_FOUND", f"No such endpoint: {ctx.request.method} {ctx.subpath}.")
        return await handler(ctx)


by_path = ByPath


def secret_header(header: str, env_name: str, secret: Callable[[], str]) -> Auth:
    """An auth hook for machine endpoints (schedulers, workers): the ``header`` must carry the
    secret configured in ``env_name``; without one configured the endpoint stays closed."""

    def check(ctx: Ctx) -> str:
        expected = secret()
        if not expected:
            raise ApiError(503, "NOT_CONFIGURED", f"Set {env_name} to enable this endpoint.")
        given = ctx.headers.get(header, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "UNAUTHORIZED", f"A valid {header} header is required.")
        return header

    return check


def function_name(module_name: str) -> str:
    """``functions.gateway_chat`` → ``gateway-chat``."""
    return module_name.rsplit(".", 1)[-1].replace("_", "-")


def function(
    module_name: str,
    *,
    auth: Auth | None = None,
    scheduled: bool = False,
    monitor_requests: bool = True,
    paths: tuple[str, ...] = (),
    errors: ErrorBody = error_response,
    **handlers: Handler,
) -> tuple[FunctionApp, Mangum]:
    """Build a function's ASGI app and its Lambda handler from handlers keyed by method.

    ``auth`` (e.g. ``admin_auth.require_admin``) runs before every handler and names the
    actor in ``ctx.actor``, or raises the 401 the client sees. A ``scheduled`` function is
    also invoked by the deploy's EventBridge schedule, as a POST that skips ``auth``.
    In production a function refuses to load with unsafe admin settings (so a Lambda fails
    its init and a server its start): see ``config.production_problems``. An endpoint polled
    by machines (``health``) passes ``monitor_requests=False``: a row per probe would bury the rest.
    A function that speaks another API (``openai``) lists the ``paths`` it serves and writes its
    ``errors`` in that API's shape."""
    config.require_safe_production()
    name = function_name(module_name)
    by_method = {m.upper(): h for m, h in handlers.items()}
    app = FunctionApp(name, by_method, auth, scheduled, monitor_requests, paths, errors)
    return app, aws_lambda.handler(app, scheduled=scheduled)
