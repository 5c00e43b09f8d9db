"""The providers the gateway knows, by name: one list for the request model, the allowlists,
the price book and the adapters (``shared.providers.PROVIDERS`` has one adapter for each).

Kept apart from ``shared.providers`` so that what only checks a name (the admin functions)
does not load the adapters and their HTTP client at a cold start. ``demo`` is the local demo
model; it answers only on the dev server (``Settings.demo_enabled``), like a provider whose
key is set there and nowhere else.
"""

from __future__ import annotations

from typing import Literal, get_args

ProviderName = Literal["openai", "anthropic", "gemini", "demo"]
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)
