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
