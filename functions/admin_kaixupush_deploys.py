"""admin-kaixupush-deploys: deploy history across customers."""

from shared.admin import auth as admin_auth
from shared.http import function
from shared.kaixupush import admin

app, handler = function(__name__, auth=admin_auth.require_admin, GET=admin.deploys)
