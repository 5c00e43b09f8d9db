"""Request bodies the gateway tests send."""

from __future__ import annotations

PROVIDER_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def body(provider: str = "openai", **changes: object) -> dict:
    return {
        "provider": provider,
        "model": PROVIDER_MODELS[provider],
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "max_tokens": 256,
        "temperature": 0.7,
        **changes,
    }
