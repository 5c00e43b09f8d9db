"""admin-topups: manual top-ups (idempotent with an Idempotency-Key) and their list."""

from shared.admin import auth as admin_auth
from shared.billing import topups
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await topups.list_topups(ctx)


async def post(ctx: Ctx):
    return await topups.create_manual(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, POST=post)
