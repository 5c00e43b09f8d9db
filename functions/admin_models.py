"""admin-models: every priced model (provider, name, USD per Mtok), for the admin's model picker."""

from shared.admin import auth as admin_auth
from shared.billing import pricing
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return {"items": pricing.priced_models()}


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get)
