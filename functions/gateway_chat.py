"""gateway-chat: one normalised completion, authorised, capped, metered and billed."""

from shared.gateway import pipeline
from shared.http import function

app, handler = function(__name__, POST=pipeline.serve_chat)
