"""gateway-stream: the same call as gateway-chat, answered as Server-Sent Events."""

from shared.gateway import pipeline as gateway
from shared.gateway import streaming
from shared.http import Ctx, function


async def post(ctx: Ctx) -> streaming.EventStreamResponse:
    return await streaming.stream(await gateway.admit(ctx))


app, handler = function(__name__, POST=post)
