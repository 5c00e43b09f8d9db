"""admin-kaixupush-deploys: deploy history across customers."""

from shared.admin.auth import require_admin
from shared.http import function
from shared.kaixupush import admin

app, handler = function(__name__, auth=require_admin, GET=admin.deploys)
