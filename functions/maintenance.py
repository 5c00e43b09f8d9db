"""maintenance: periodic upkeep, run every minute by the deploy's schedule (or POSTed by any
scheduler with the x-kaixu-maintenance-secret header)."""

from shared import config
from shared.host import maintenance
from shared.http import Ctx, function, secret_header


async def post(ctx: Ctx) -> dict:
    return {"item": await maintenance.run_once()}


app, handler = function(
    __name__,
    auth=secret_header(
        "x-kaixu-maintenance-secret", "KAIXU_MAINTENANCE_SECRET", lambda: config.settings().maintenance_secret
    ),
    scheduled=True,
    POST=post,
)
