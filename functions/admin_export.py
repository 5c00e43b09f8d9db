"""admin-export: CSV downloads (usage, customers, keys, devices, top-ups, invoices, summary)."""

from starlette.responses import Response

from shared.admin import auth as admin_auth
from shared.admin import exports
from shared.http import Ctx, function


async def get(ctx: Ctx) -> Response:
    return await exports.download(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get)
