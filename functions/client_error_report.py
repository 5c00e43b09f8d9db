"""client-error-report: client apps report their own errors into the monitor."""

from shared.gateway import client_errors
from shared.http import function

app, handler = function(__name__, POST=client_errors.report)
