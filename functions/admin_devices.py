"""admin-devices: the devices of a customer or key; revoke and un-revoke them."""

from shared.admin import auth as admin_auth
from shared.admin import devices as admin_devices
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await admin_devices.list_devices(ctx)


async def post(ctx: Ctx) -> dict:
    return await admin_devices.act(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, POST=post)
