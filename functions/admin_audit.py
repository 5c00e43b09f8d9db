"""admin-audit: the audit log (who did what to which thing), filtered and paged."""

from shared.admin import audit as admin_audit
from shared.admin import auth as admin_auth
from shared.http import Ctx, function


async def get(ctx: Ctx) -> dict:
    return await admin_audit.list_events(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, GET=get)
