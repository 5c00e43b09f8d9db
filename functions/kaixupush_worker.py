"""kaixupush-worker: run due upload jobs, expire stale parts, finalise deploys. The deploy runs it on
a schedule; any other scheduler POSTs it with the x-kaixu-worker-secret header."""

from shared import config
from shared.http import Ctx, function, secret_header
from shared.kaixupush import jobs


async def post(ctx: Ctx) -> dict:
    return {"item": await jobs.upkeep()}


app, handler = function(
    __name__,
    auth=secret_header(
        "x-kaixu-worker-secret", "KAIXUPUSH_WORKER_SECRET", lambda: config.settings().kaixupush_worker_secret
    ),
    scheduled=True,
    POST=post,
)
