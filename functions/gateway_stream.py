"""gateway-stream: the same call as gateway-chat, answered as Server-Sent Events."""

from shared.gateway import streaming
from shared.http import function

app, handler = function(__name__, POST=streaming.serve_stream)
