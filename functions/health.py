"""health: is this deployment up, and can it reach its database?"""

from shared import health
from shared.http import function

app, handler = function(__name__, monitor_requests=False, GET=health.get)
