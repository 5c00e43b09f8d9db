"""The OpenAI-compatible endpoints: ``POST /v1/chat/completions``, ``GET /v1/models`` and
``POST /v1/embeddings``, below ``/.netlify/functions/openai`` and on the API origin."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from shared.compat import models, openai_format
from shared.compat.reader import KeptBody
from shared.gateway import keys, pipeline, streaming
from shared.http import Ctx

CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
EMBEDDINGS = "/v1/embeddings"
PATHS = (CHAT, MODELS, EMBEDDINGS)


async def chat_completions(ctx: Ctx) -> Response | dict[str, Any]:
    body = KeptBody(openai_format.parse)
    call = await pipeline.admit(ctx, body, streamed=lambda: openai_format.wants_stream(body.payload)[0])
    stream, include_usage = openai_format.wants_stream(body.payload)
    if stream:
        return await streaming.stream(call, openai_format.OpenAIGrammar(include_usage))
    completion, billed = await pipeline.complete(call)
    return pipeline.answer(call, openai_format.completion(call.conv, completion, billed, ctx))


async def list_models(ctx: Ctx) -> dict[str, Any]:
    """The models this key may call, after its allowlists, as ``provider/model``."""
    allowed = await models.for_key(keys.bearer_key(ctx.headers.get("authorization")))
    data = [
        {"id": m["id"], "object": "model", "created": m["created"], "owned_by": m["provider"]}
        for m in allowed
    ]
    return {"object": "list", "data": data}


async def embeddings(ctx: Ctx) -> dict[str, Any]:
    body = KeptBody(openai_format.parse_embeddings)
    call = await pipeline.admit(ctx, body)
    answer, billed = await pipeline.embed(call)
    return openai_format.embeddings(call.conv, answer, billed, body.payload)
