"""gateway-chat: one normalised completion, authorised, capped, metered and billed."""

from shared.gateway import pipeline as gateway
from shared.http import Ctx, function


async def post(ctx: Ctx) -> dict:
    return await gateway.chat(await gateway.admit(ctx))


app, handler = function(__name__, POST=post)
