"""Client-side error reports, stored as monitor rows (level error, kind client_error).

The stored row is the request's only monitor row: a report does not also write an
``http`` row, so a flood of reports costs one insert each. They are throttled per client
address and against one budget for everyone (``CLIENT_ERROR_GLOBAL_PER_MIN``: many addresses
cannot fill the table either) before any parsing, and what is stored is capped at a few KB.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson

from shared import config, monitor, throttle
from shared.errors import ApiError
from shared.http import Ctx

MAX_REPORT_BYTES = 32 * 1024
_FIELD_CAP = 2_000  # each of client and context, as JSON


def _capped(value: Any) -> Any:
    encoded = orjson.dumps(value)
    if len(encoded) <= _FIELD_CAP:
        return value
    return {"_truncated": True, "preview": encoded[:500].decode(errors="replace")}


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


async def report(ctx: Ctx) -> dict[str, Any]:
    """POST client-error-report: store the report as one monitor row."""
    cfg = config.settings()
    if cfg.client_error_token:
        given = ctx.headers.get("x-kaixu-error-token", "")
        if not hmac.compare_digest(given.encode(), cfg.client_error_token.encode()):
            raise ApiError(403, "FORBIDDEN", "A valid x-kaixu-error-token header is required.")
    for scope, subject, limit, whose in (
        ("client_error", ctx.client_ip, cfg.client_error_per_min, "this client"),
        ("client_error_all", "everyone", cfg.client_error_global_per_min, "all clients"),
    ):
        verdict = await throttle.hit(scope, subject, limit=limit, window_s=60)
        if not verdict.allowed:
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"Too many error reports from {whose}; slow down.",
                headers={"retry-after": str(verdict.retry_after_s)},
            )
    payload = await ctx.json_object(MAX_REPORT_BYTES)
    error = payload.get("error") or payload.get("err") or {}
    if not isinstance(error, dict):
        error = {"message": error}
    await monitor.insert(
        {
            "request_id": ctx.request_id,
            "level": "error",
            "kind": "client_error",
            "function_name": ctx.function,
            "method": "POST",
            "app": ctx.app_tag,
            "build": ctx.build_tag,
            "status": 200,
            "duration_ms": round(ctx.elapsed_ms(), 2),
            "customer_id": None,
            "api_key_id": None,
            "provider": None,
            "model": None,
            "summary": _text(error.get("message"), 1000) or "Client error reported",
            "extra": {
                "error": {
                    "name": _text(error.get("name"), 200),
                    "stack": _text(error.get("stack"), 4000),
                },
                "client": _capped(payload.get("client")),
                "context": _capped(payload.get("context")),
            },
        }
    )
    ctx.monitored = True
    return {"ok": True, "request_id": ctx.request_id}
