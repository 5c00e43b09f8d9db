"""Anthropic-compatible API: ``Anthropic(base_url="https://HOST/.netlify/functions/anthropic")``."""

from shared.compat import anthropic_api as api
from shared.compat import anthropic_format
from shared.http import by_path, function

app, handler = function(
    __name__, paths=api.PATHS, errors=anthropic_format.error_body, POST=by_path({api.MESSAGES: api.messages})
)
