"""The model catalogue, held in each process: which names a provider offers here and their
token limits, for checking and shaping a request before ADMIT.

Only facts that are not money live here. The price a call is billed at, and whether its model
is still offered at all, are decided by ADMIT in the database at the moment of admission, so a
stale copy can refuse a request early at worst, never bill one wrongly. The copy is reloaded
every ``TTL_S`` seconds, at once by an admin change made in this process, and on a name it does
not know (at most once a second, so a stranger's made-up names cannot hammer the database):
a model just added is callable from its first request.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from shared import db
from shared.errors import ApiError

TTL_S = 30.0
MISS_RELOAD_S = 1.0

_SELECT = """
SELECT n.provider, n.name, m.name AS model, m.mode, m.max_input_tokens, m.max_output_tokens
FROM model_names n JOIN models m ON m.id = n.model_id
WHERE m.retired_at IS NULL
ORDER BY n.provider, m.name
"""


class UnknownModel(ApiError):
    """A refusal for a model name the catalogue does not know: worth one reload and retry."""


class ModelInfo(NamedTuple):
    """A model as the request checks see it: its canonical name, kind and token limits."""

    provider: str
    model: str
    mode: str  # "chat" or "embedding"
    max_input_tokens: int
    max_output_tokens: int


class Catalogue:
    def __init__(self) -> None:
        self._names: dict[tuple[str, str], ModelInfo] = {}
        self._loaded_at = float("-inf")

    async def ready(self) -> None:
        """Load the catalogue when this process has none or its copy is older than TTL_S."""
        if time.monotonic() - self._loaded_at > TTL_S:
            await self._load()

    async def reload_after_miss(self) -> bool:
        """Reload for a name the copy does not know; False when the copy is under a second old."""
        if time.monotonic() - self._loaded_at < MISS_RELOAD_S:
            return False
        await self._load()
        return True

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def _load(self) -> None:
        rows = await db.fetch_all(_SELECT)
        self._names = {(row["provider"], row["name"]): _info(row) for row in rows}
        self._loaded_at = time.monotonic()

    def find(self, provider: str, name: str) -> ModelInfo | None:
        """The model ``name`` (canonical or alias) names at ``provider``, if offered."""
        return self._names.get((provider, name))

    def providers_of(self, name: str) -> list[str]:
        """Every provider that offers a model by this name (or alias)."""
        return sorted({provider for provider, listed in self._names if listed == name})

    def models(self) -> list[ModelInfo]:
        """Each offered model once, by provider and name."""
        unique = {(info.provider, info.model): info for info in self._names.values()}
        return [unique[key] for key in sorted(unique)]


def _info(row: dict[str, Any]) -> ModelInfo:
    limits = (int(row["max_input_tokens"]), int(row["max_output_tokens"]))
    return ModelInfo(row["provider"], row["model"], row["mode"], *limits)


catalogue = Catalogue()
