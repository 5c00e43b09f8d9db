"""openapi: the OpenAPI 3.1 document of every function (what ``openapi.json`` holds)."""

from shared.host import openapi
from shared.http import function

app, handler = function(__name__, GET=openapi.serve)
