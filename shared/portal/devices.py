"""A customer's devices (install ids seen on its keys): list, revoke, un-revoke.

The operator's handlers (``shared.admin.devices``) scoped to the session's customer: a device
of another customer's key is not found.
"""

from __future__ import annotations

from typing import Any

from shared.admin import devices
from shared.http import Ctx
from shared.portal import account


async def list_devices(ctx: Ctx) -> dict[str, Any]:
    """GET ?api_key_id=: the customer's devices, newest first."""
    await account.check_own_key(ctx)
    return await devices.list_for(ctx, ctx.customer)


async def act(ctx: Ctx) -> dict[str, Any]:
    """POST ?action=revoke|unrevoke&id=<api_key_id>:<install_id>."""
    return await devices.act(ctx, owner=ctx.customer)
