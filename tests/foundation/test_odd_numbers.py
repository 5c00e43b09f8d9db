"""Numbers from query strings, headers and webhooks are parsed strictly: odd digits are a 400."""

from __future__ import annotations

import base64

import pytest

from shared import numbers
from tests.support import admin as admin_support

admin = admin_support.admin  # the fixture

ODD = ["²", "--5", "-1", "1.5", "9" * 30, "٣", " 7"]


@pytest.mark.parametrize("raw", ODD)
def test_whole_accepts_ascii_digits_only(raw):
    assert numbers.whole(raw) is None
    assert numbers.whole("0") == 0 and numbers.whole("123456789012345678") == 123456789012345678


@pytest.mark.parametrize("raw", ODD)
@pytest.mark.parametrize(
    ("function", "param"),
    [
        ("admin-topups", "id"),
        ("admin-customers", "id"),
        ("admin-keys", "customer_id"),
        ("admin-monitor", "status"),
        ("admin-usage", "customer_id"),
    ],
)
def test_odd_numbers_in_query_strings_are_400(admin, function, param, raw):
    response = admin.get(function, params={param: raw})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == param


def test_an_oversized_cursor_is_400(admin):
    cursor = base64.urlsafe_b64encode(b"id:" + b"9" * 30).decode().rstrip("=")
    response = admin.get("admin-keys", params={"customer_id": 1, "cursor": cursor})
    assert response.status_code == 400 and response.json()["field"] == "cursor"


def test_odd_device_ids_are_400(admin):
    response = admin.post("admin-devices", params={"id": "²:phone", "action": "revoke"})
    assert response.status_code == 400
