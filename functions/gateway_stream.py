"""gateway-stream: the same call as gateway-chat, answered as Server-Sent Events."""

from shared import gateway, streaming
from shared.http import Ctx, function


async def post(ctx: Ctx) -> streaming.EventStreamResponse:
    return await streaming.stream(await gateway.admit(ctx))


app, handler = function(__name__, POST=post)
