"""The health report: build, schema version and a database probe, never secrets or raw errors."""

from __future__ import annotations

import logging
from typing import Any

from shared import config, db
from shared.http import Ctx, JSONResponse

log = logging.getLogger("kaixu.health")


async def report() -> dict[str, Any]:
    try:
        row = await db.fetch_row("SELECT coalesce(max(version), 0) AS version FROM schema_migrations")
        schema_version, db_ok = int(row["version"]), True
    except Exception:
        log.warning("health: database probe failed", exc_info=True)
        schema_version, db_ok = None, False
    return {
        "ok": db_ok,
        "build": config.settings().build,
        "schema_version": schema_version,
        "db": {"ok": db_ok},
    }


async def get(ctx: Ctx) -> JSONResponse:
    """GET health: 200 with the report, 503 when the database cannot be reached."""
    body = await report()
    return JSONResponse(body, status_code=200 if body["ok"] else 503)
