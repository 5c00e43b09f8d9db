"""kaixupush-client: the KaixuPush deploy client, one Python file needing only the standard
library; also served at ``/kaixupush.py`` (``curl -fsSLO https://GATEWAY/kaixupush.py``)."""

from shared.http import by_path, function
from shared.kaixupush import publish

# No monitor row per download: CI fetches it on every run, and it says nothing of a customer.
app, handler = function(
    __name__, monitor_requests=False, paths=(publish.PATH,), GET=by_path({publish.PATH: publish.serve})
)
