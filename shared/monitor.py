"""The monitor: one ``gateway_events`` row per request.

The gateway writes its row inside SETTLE (same round trip); every other function's row is
written here by the wrapper after the response has been sent. A failed monitor write is
logged and dropped: the monitor must never break the request it describes.

Levels follow the status, so the screen's Level filter separates the two kinds of failure:
``warn`` is a 4xx (the caller was refused: bad key, cap reached, rate limit, bad input...),
``error`` a 5xx (the gateway or a provider failed). Every error answer also records its
``code`` and sentence (``summary``), as the client was told them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from shared import db

if TYPE_CHECKING:
    from shared.http import Ctx

log = logging.getLogger("kaixu.monitor")
# An error sentence can quote what the caller sent (a path, a model name): the row keeps a
# readable head of it, never an unbounded copy.
MAX_SUMMARY = 1000

INSERT_EVENT = """
INSERT INTO gateway_events (request_id, level, kind, function_name, method, app, build, status,
                            duration_ms, customer_id, api_key_id, provider, model, summary, code, extra)
VALUES (%(request_id)s, %(level)s, %(kind)s, %(function_name)s, %(method)s, %(app)s, %(build)s,
        %(status)s, %(duration_ms)s, %(customer_id)s, %(api_key_id)s, %(provider)s, %(model)s,
        %(summary)s, %(code)s, %(extra)s)
"""


def level_for(status: int) -> str:
    """``error`` for a 5xx, ``warn`` for a 4xx (refusals), else ``info``."""
    return "error" if status >= 500 else "warn" if status >= 400 else "info"


async def insert(row: dict[str, Any]) -> None:
    extra = row.get("extra")
    row = {"code": None, **row, "extra": orjson.dumps(extra).decode() if extra is not None else None}
    try:
        await db.execute(INSERT_EVENT, row)
    except Exception:
        log.warning("monitor row for request %s was not written", row.get("request_id"), exc_info=True)


async def record_response(ctx: Ctx, method: str, status: int) -> None:
    await insert(
        {
            "request_id": ctx.request_id,
            "level": ctx.level or level_for(status),
            "kind": "http",
            "function_name": ctx.function,
            "method": method,
            "app": ctx.app_tag,
            "build": ctx.build_tag,
            "status": status,
            "duration_ms": round(ctx.elapsed_ms(), 2),
            "customer_id": ctx.customer_id,
            "api_key_id": ctx.api_key_id,
            "provider": ctx.provider,
            "model": ctx.model,
            "summary": ctx.summary[:MAX_SUMMARY] if ctx.summary else None,
            "code": ctx.code,
            "extra": None,
        }
    )
