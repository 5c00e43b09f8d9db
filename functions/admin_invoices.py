"""admin-invoices: immutable, versioned invoice snapshots per customer and month."""

from starlette.responses import Response

from shared.admin import auth as admin_auth
from shared.billing import invoices
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await invoices.get(ctx)


async def post(ctx: Ctx) -> Response:
    return await invoices.take_snapshot(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, POST=post)
