"""admin-monitor: the monitor list, its live tail (SSE) and pruning of old rows."""

from starlette.responses import Response

from shared.admin import auth as admin_auth
from shared.admin import monitor as monitor_admin
from shared.http import Ctx, function


async def get(ctx: Ctx) -> Response | dict:
    return await monitor_admin.get(ctx)


async def post(ctx: Ctx) -> dict:
    return await monitor_admin.post(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, POST=post)
