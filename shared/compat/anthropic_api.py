"""The Anthropic-compatible endpoint: ``POST /v1/messages``, below
``/.netlify/functions/anthropic`` and on the API origin. The key comes as ``x-api-key`` (the
SDK's default) or ``Authorization: Bearer`` (its ``auth_token``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from shared.compat import anthropic_format
from shared.compat.reader import KeptBody
from shared.gateway import keys, pipeline, streaming
from shared.http import Ctx

MESSAGES = "/v1/messages"
PATHS = (MESSAGES,)


async def messages(ctx: Ctx) -> Response | dict[str, Any]:
    body = KeptBody(anthropic_format.parse)
    given = ctx.headers.get("x-api-key")
    secret = keys.checked_key(given) if given else None
    call = await pipeline.admit(
        ctx, body, secret, streamed=lambda: anthropic_format.wants_stream(body.payload)
    )
    if anthropic_format.wants_stream(body.payload):
        return await streaming.stream(call, anthropic_format.AnthropicGrammar())
    completion, billed = await pipeline.complete(call)
    return pipeline.answer(call, anthropic_format.message(call.conv, completion, billed, ctx))
