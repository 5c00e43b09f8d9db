"""admin-models: every priced model (provider, name, USD per Mtok), for the admin's model picker."""

from shared.admin.auth import require_admin
from shared.billing import pricing
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=pricing.list_models)
