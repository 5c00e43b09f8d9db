"""The demo provider: ``demo/kaixu-demo-1`` (or any model the price book lists under
``demo``), answered by the deterministic local model in ``demo_model``.

It is an adapter like the others: the gateway admits, caps, meters, settles and monitors its
calls exactly as it does a real provider's, and it translates the conversation as the OpenAI
adapter does, because the demo model speaks OpenAI's wire format. Only two things differ: the
answer comes from this process instead of the network, and the provider is configured (has
its "key") only where ``Settings.demo_enabled`` holds, which is the dev server alone. Anywhere
else a call to it is refused 503 ``PROVIDER_NOT_CONFIGURED`` before any work, as a provider
without a key is.
"""

from __future__ import annotations

from shared.config import Settings
from shared.providers.base import UpstreamCall, UpstreamResponse, request_headers
from shared.providers.conversation import Conversation
from shared.providers.demo_model import LocalResponse
from shared.providers.openai import OpenAI

URL = "local://kaixu-demo/v1/chat/completions"  # never dialled: answer_locally serves it
CONFIGURED = "local"  # the "key" a configured demo provider has: a placeholder, not a secret


class Demo(OpenAI):
    name = "demo"
    label = "Kaixu demo"

    def api_key(self, cfg: Settings) -> str:
        return CONFIGURED if cfg.demo_enabled else ""

    def refusal(self, conv: Conversation) -> str | None:
        """The demo model writes prose: it cannot promise JSON or a tool call."""
        if conv.response_format is not None:
            return "response_format"
        if conv.tool_choice is not None and conv.tool_choice.mode in ("required", "named"):
            return "tool_choice"
        return None

    def build(self, conv: Conversation, cfg: Settings, *, stream: bool) -> UpstreamCall:
        body = super().build(conv, cfg, stream=stream).body
        return UpstreamCall(URL, request_headers(stream, {}), body)

    def answer_locally(self, call: UpstreamCall, cfg: Settings) -> UpstreamResponse | None:
        stream = bool(call.body.get("stream"))
        return LocalResponse(call.body, stream=stream, delay_s=cfg.demo_word_delay_s)

    def build_embeddings(self, conv: Conversation, cfg: Settings) -> UpstreamCall:
        raise NotImplementedError("the demo model has no embeddings")
