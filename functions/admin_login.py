"""admin-login: exchange ADMIN_PASSWORD for a short-lived admin token."""

from shared.admin import auth
from shared.http import function

app, handler = function(__name__, POST=auth.login)
