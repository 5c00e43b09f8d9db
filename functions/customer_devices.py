"""customer-devices: the devices on the signed-in customer's keys; revoke and un-revoke them."""

from shared.http import function
from shared.portal import devices, session

app, handler = function(__name__, auth=session.require_customer, GET=devices.list_devices, POST=devices.act)
