"""admin-customers: list/search, read, create (with its master key) and change policy."""

from shared.admin import auth as admin_auth
from shared.admin import customers as admin_customers
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await admin_customers.list_customers(ctx)


async def post(ctx: Ctx):
    return await admin_customers.create_customer(ctx)


async def patch(ctx: Ctx) -> dict:
    return await admin_customers.update_policy(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get, POST=post, PATCH=patch)
