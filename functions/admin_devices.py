"""admin-devices: the devices of a customer or key; revoke and un-revoke them."""

from shared.admin import devices
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=devices.list_devices, POST=devices.act)
