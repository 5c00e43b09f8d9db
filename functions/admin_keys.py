"""admin-keys: list a customer's keys, create sub-keys, rotate, revoke, change overrides."""

from shared.admin import auth as admin_auth
from shared.admin import keys as admin_keys
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await admin_keys.list_keys(ctx)


async def post(ctx: Ctx):
    return await admin_keys.post(ctx)


async def patch(ctx: Ctx) -> dict:
    return await admin_keys.update_key(ctx)


async def delete(ctx: Ctx) -> dict:
    return await admin_keys.delete(ctx)


app, handler = function(
    __name__, auth=admin_auth.require_admin, GET=get, POST=post, PATCH=patch, DELETE=delete
)
