"""health: is this deployment up, and can it reach its database?"""

from shared import health
from shared.http import Ctx, JSONResponse, function


async def get(ctx: Ctx) -> JSONResponse:
    report = await health.report()
    return JSONResponse(report, status_code=200 if report["ok"] else 503)


app, handler = function(__name__, monitor_requests=False, GET=get)
