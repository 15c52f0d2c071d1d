"""Query parameters past SQLite's 64-bit integers are a 400, not a 500 (outside probe)."""

from __future__ import annotations

import pytest

from .conftest import Client


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/customers/someone/messages"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("end_ts", "-99999999999999999999"),
        ("end_ts", "99999999999999999999"),
        ("campaign_id", "99999999999999999999"),
        ("newsletter_id", "-99999999999999999999"),
    ],
)
def test_a_huge_integer_parameter_is_400(client: Client, path: str, name: str, value: str) -> None:
    client.track("PUT", "/api/v1/customers/someone", {"email": "s@example.com"})
    answer = client.app("GET", path, params={name: value})
    assert answer.status_code == 400, answer.text
    assert client.app("GET", path).status_code == 200


BIG = "9" * 30


@pytest.mark.parametrize(
    ("family", "method", "path", "body"),
    [
        ("track", "POST", "/api/v1/customers/big/events", '{"name": "e", "timestamp": BIG}'),
        ("track", "PUT", "/api/v1/customers/big", '{"email": "a@b.c", "created_at": 1e400}'),
        ("track", "POST", "/api/v1/segments/BIG/add_customers", '{"ids": ["big"]}'),
        (
            "track",
            "PUT",
            "/api/v1/customers/big/devices",
            '{"device": {"id": "d", "last_used": BIG}}',
        ),
        (
            "app",
            "POST",
            "/v1/send/email",
            '{"transactional_message_id": BIG, "to": "a@b.c", "identifiers": {"id": "big"}}',
        ),
        ("app", "POST", "/v1/campaigns/BIG/triggers", '{"data": {}}'),
        ("app", "GET", "/v1/segments/BIG", None),
        ("app", "GET", "/v1/campaigns/BIG", None),
    ],
)
def test_a_number_past_64_bits_in_a_request_is_4xx(
    client: Client, family: str, method: str, path: str, body: str | None
) -> None:
    data = body.replace("BIG", BIG) if body else None
    headers = {"Content-Type": "application/json"}
    call = client.app if family == "app" else client.track
    answer = call(method, path.replace("BIG", BIG), data=data, headers=headers)
    assert 400 <= answer.status_code < 500, answer.text  # 404 when the id names nothing
