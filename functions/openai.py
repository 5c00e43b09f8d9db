"""OpenAI-compatible API: ``OpenAI(base_url="https://HOST/.netlify/functions/openai/v1")``."""

from shared.compat import openai_api as api
from shared.compat import openai_format
from shared.http import by_path, function

app, handler = function(
    __name__,
    paths=api.PATHS,
    errors=openai_format.error_body,
    POST=by_path({api.CHAT: api.chat_completions, api.EMBEDDINGS: api.embeddings}),
    GET=by_path({api.MODELS: api.list_models}),
)
