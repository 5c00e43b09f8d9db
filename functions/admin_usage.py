"""admin-usage: a customer's usage events, or the month summary with ``view=summary``."""

from shared.admin import auth as admin_auth
from shared.admin import usage as admin_usage
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await admin_usage.list_events(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get)
