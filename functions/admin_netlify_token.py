"""admin-netlify-token: set, clear or check a customer's Netlify token (never shown back)."""

from shared.admin import netlify_tokens
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(
    __name__,
    auth=require_admin,
    GET=netlify_tokens.status,
    PUT=netlify_tokens.set_token,
    POST=netlify_tokens.set_token,
    DELETE=netlify_tokens.clear_token,
)
