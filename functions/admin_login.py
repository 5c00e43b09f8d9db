"""admin-login: exchange ADMIN_PASSWORD for a short-lived admin token."""

from shared.admin import auth as admin_auth
from shared.http import Ctx, function


async def post(ctx: Ctx) -> dict:
    return await admin_auth.login(ctx)


app, handler = function(__name__, POST=post)
