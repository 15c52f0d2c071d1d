"""Opt-outs (unsubscribed people, ESP suppression lists) and Customer.io's per-endpoint limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cio_flows.emulator import Emulator

from .conftest import Client

SEND = {"transactional_message_id": 1, "identifiers": {"id": "quitter"}}


def _unsubscribed(client: Client) -> None:
    r = client.track(
        "PUT", "/api/v1/customers/quitter", {"email": "q@example.com", "unsubscribed": True}
    )
    assert r.status_code == 200


def _message(client: Client, delivery_id: str) -> dict:
    r = client.app("GET", f"/v1/messages/{delivery_id}")
    assert r.status_code == 200
    return r.json()["message"]


def test_unsubscribed_person_gets_nothing_when_the_send_says_false(client: Client) -> None:
    _unsubscribed(client)
    client.emulator.configure(delivery={"sent": 0, "delivered": 0})
    r = client.app(
        "POST", "/v1/send/email", {**SEND, "to": "q@example.com", "send_to_unsubscribed": False}
    )
    assert r.status_code == 200
    message = _message(client, r.json()["delivery_id"])
    assert "delivered" not in message["metrics"] and "sent" not in message["metrics"]
    assert "failed" in message["metrics"]
    assert "unsubscribed" in message["failure_message"]


def test_send_to_unsubscribed_defaults_to_true(client: Client) -> None:
    _unsubscribed(client)
    client.emulator.configure(delivery={"sent": 0, "delivered": 0})
    for extra in ({}, {"send_to_unsubscribed": True}):
        r = client.app("POST", "/v1/send/email", {**SEND, "to": "q@example.com", **extra})
        message = _message(client, r.json()["delivery_id"])
        assert "delivered" in message["metrics"], extra


def test_a_subscribed_person_is_messaged_with_the_flag_false(client: Client) -> None:
    client.emulator.configure(delivery={"sent": 0, "delivered": 0})
    body = {
        **SEND,
        "identifiers": {"id": "stayer"},
        "to": "s@example.com",
        "send_to_unsubscribed": False,
    }
    r = client.app("POST", "/v1/send/email", body)
    assert "delivered" in _message(client, r.json()["delivery_id"])["metrics"]


def test_esp_suppressed_address_is_dropped_until_removed(client: Client) -> None:
    client.emulator.configure(delivery={"sent": 0, "delivered": 0})
    addr = "gone@example.com"
    assert client.app("POST", f"/v1/esp/suppression/bounces/{addr}").status_code == 200
    listed = client.app("GET", "/v1/esp/suppression/bounces").json()
    assert listed["category"] == "bounces"
    assert [s["email"] for s in listed["suppressions"]] == [addr]
    found = client.app("GET", f"/v1/esp/search_suppression/{addr}").json()
    assert [s["email"] for s in found["suppressions"]] == [addr]
    r = client.app("POST", "/v1/send/email", {**SEND, "to": addr, "send_to_unsubscribed": True})
    message = _message(client, r.json()["delivery_id"])
    assert "dropped" in message["metrics"] and "delivered" not in message["metrics"]
    assert "bounces suppression list" in message["failure_message"]
    assert client.app("DELETE", f"/v1/esp/suppression/bounces/{addr}").status_code == 204
    r = client.app("POST", "/v1/send/email", {**SEND, "to": addr})
    assert "delivered" in _message(client, r.json()["delivery_id"])["metrics"]
    assert client.app("POST", f"/v1/esp/suppression/blocks/{addr}").status_code == 400


@pytest.fixture
def limited() -> Iterator[Client]:
    with Emulator(limits="customerio") as emu:
        client = Client(emu)
        yield client
        client.http.close()


def test_thirty_sends_fit_the_transactional_limit(limited: Client) -> None:
    statuses = [
        limited.app("POST", "/v1/send/email", {**SEND, "to": f"p{i}@example.com"}).status_code
        for i in range(30)
    ]
    assert statuses == [200] * 30


def test_sends_do_not_use_up_the_app_api_budget(limited: Client) -> None:
    for i in range(30):
        limited.app("POST", "/v1/send/email", {**SEND, "to": f"p{i}@example.com"})
    assert limited.app("GET", "/v1/segments").status_code == 200


def test_broadcast_triggers_are_one_per_ten_seconds(limited: Client) -> None:
    first = limited.app("POST", "/v1/campaigns/1/triggers", {"ids": ["user_0007"]})
    second = limited.app("POST", "/v1/campaigns/1/triggers", {"ids": ["user_0007"]})
    assert (first.status_code, second.status_code) == (200, 429)
    assert int(second.headers["Retry-After"]) >= 1


def test_pipelines_allow_a_burst_of_three_thousand() -> None:
    from cio_flows.emulator.config import CUSTOMERIO_LIMITS

    assert CUSTOMERIO_LIMITS["pipelines"].capacity == 3000
    assert CUSTOMERIO_LIMITS["pipelines"].rate * 3 == 3000
    assert CUSTOMERIO_LIMITS["transactional"].rate == 100
