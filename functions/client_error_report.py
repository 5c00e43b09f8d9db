"""client-error-report: client apps report their own errors into the monitor."""

from shared.gateway import client_errors
from shared.http import Ctx, function


async def post(ctx: Ctx) -> dict:
    await client_errors.report(ctx)
    return {"ok": True, "request_id": ctx.request_id}


app, handler = function(__name__, POST=post)
