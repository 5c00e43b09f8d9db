"""The normalised chat request that gateway-chat and gateway-stream accept: text only, and
exactly as it has always been; the pipeline works on the :class:`Conversation` it makes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.provider_names import ProviderName
from shared.providers.conversation import Conversation, Text, Turn

Role = Literal["system", "developer", "user", "assistant"]
DEFAULT_MAX_TOKENS = 1024


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    """Validated client input. ``max_tokens`` is checked against the model's limit later,
    once the price book has said which model this is."""

    model_config = ConfigDict(extra="ignore")
    provider: ProviderName
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    messages: list[Message] = Field(min_length=1, max_length=2000)
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _no_bool_or_float(cls, value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number")
        return value

    def conversation(self) -> Conversation:
        return Conversation(
            provider=self.provider,
            model=self.model,
            turns=tuple(Turn(m.role, (Text(m.text),)) for m in self.messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
