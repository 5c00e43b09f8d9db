"""admin-netlify-token: set, clear or check a customer's Netlify token (never shown back)."""

from shared.admin import auth as admin_auth
from shared.admin import netlify_tokens
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await netlify_tokens.status(ctx)


async def put(ctx: Ctx) -> dict:
    return await netlify_tokens.set_token(ctx)


async def delete(ctx: Ctx) -> dict:
    return await netlify_tokens.clear_token(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, PUT=put, POST=put, DELETE=delete)
