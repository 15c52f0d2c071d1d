"""Track's report-back endpoints (metrics and push events recorded on the message, the
unsubscribe link, form submissions) and the older broadcast trigger path."""

from __future__ import annotations

from .conftest import Client


def _send(client: Client, to: str = "ada@example.com") -> str:
    body = {"transactional_message_id": 1, "to": to, "identifiers": {"id": "ada"}}
    return client.app("POST", "/v1/send/email", body).json()["delivery_id"]


def _metrics(client: Client, delivery_id: str) -> dict:
    return client.app("GET", f"/v1/messages/{delivery_id}").json()["message"]["metrics"]


def test_a_reported_open_and_click_are_recorded_without_credentials(client: Client) -> None:
    delivery = _send(client)
    for metric in ("opened", "clicked"):
        r = client.http.post(
            client.url + "/api/v1/metrics", json={"delivery_id": delivery, "metric": metric}
        )
        assert (r.status_code, r.json()) == (200, {})
    metrics = _metrics(client, delivery)
    assert {"sent", "delivered", "opened", "clicked"} <= set(metrics)


def test_a_reported_bounce_keeps_its_reason(client: Client) -> None:
    delivery = _send(client)
    body = {"delivery_id": delivery, "metric": "bounced", "reason": "mailbox full"}
    client.http.post(client.url + "/api/v1/metrics", json=body)
    message = client.app("GET", f"/v1/messages/{delivery}").json()["message"]
    assert "bounced" in message["metrics"] and message["failure_message"] == "mailbox full"


def test_push_events_and_unknown_messages(client: Client) -> None:
    r = client.http.post(
        client.url + "/api/v1/push/events", json={"delivery_id": "nope", "event": "opened"}
    )
    assert r.status_code == 200
    delivery = _send(client)
    r = client.http.post(
        client.url + "/api/v1/push/events", json={"delivery_id": delivery, "event": "opened"}
    )
    assert "opened" in _metrics(client, delivery)


def test_the_unsubscribe_link_unsubscribes_the_person(client: Client) -> None:
    delivery = _send(client)
    r = client.http.post(client.url + f"/unsubscribe/{delivery}", json={"unsubscribe": True})
    assert r.status_code == 200
    attributes = client.attributes("ada").json()["customer"]
    assert attributes["unsubscribed"] is True
    assert "unsubscribed" in _metrics(client, delivery)
    r = client.http.post(client.url + "/unsubscribe/nope", json={"unsubscribe": True})
    assert r.status_code == 400


def test_a_form_submission_identifies_a_person(client: Client) -> None:
    body = {"data": {"email": "form@example.com", "first_name": "Form"}}
    r = client.track("POST", "/api/v1/forms/signup/submit", body)
    assert r.status_code == 204 and r.content == b""
    found = client.attributes("form@example.com", "email").json()["customer"]
    assert found["attributes"]["first_name"] == "Form"
    both = {"data": {"email": "a@example.com", "id": "a"}}
    assert client.track("POST", "/api/v1/forms/signup/submit", both).status_code == 400
    assert (
        client.http.post(client.url + "/api/v1/forms/signup/submit", json=body).status_code == 401
    )


def test_the_older_broadcast_trigger_path_is_an_alias(client: Client) -> None:
    r = client.app("POST", "/v1/api/campaigns/1/triggers", {"ids": ["user_0007"]})
    assert r.status_code == 200 and isinstance(r.json()["id"], int)
    status = client.app("GET", f"/v1/campaigns/1/triggers/{r.json()['id']}")
    assert status.status_code == 200 and status.json()["broadcast_id"] == 1
    assert client.app("POST", "/v1/api/campaigns/999/triggers", {"ids": ["x"]}).status_code == 404
