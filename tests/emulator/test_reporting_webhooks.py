"""Reporting webhooks: created through the App API, they receive each message event and each
subscribe/unsubscribe, signed, in bodies valid against reporting_webhooks.json."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cio_flows.emulator import Emulator
from cio_flows.emulator.openapi import errors
from cio_flows.emulator.webhooks import DEMO_SIGNING_KEY

from .conftest import Client

EVENT_SCHEMA = "/components/schemas/reporting_webhook"


class Receiver:
    """A local handler that records what it is sent; answers `statuses` in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.received.append(
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"got {len(self.received)} posts, expected {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def quick(client: Client) -> Client:
    client.emulator.configure(delivery={"sent": 0.1, "delivered": 0.2})
    return client


def _hook(client: Client, url: str, events: list[str]) -> dict[str, Any]:
    r = client.app(
        "POST", "/v1/reporting_webhooks", {"name": "test", "endpoint": url, "events": events}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _verified(post: dict[str, Any]) -> dict[str, Any]:
    """What a handler does: check the signature, then read the body."""
    stamp = post["headers"]["x-cio-timestamp"]
    expected = hmac.new(
        DEMO_SIGNING_KEY.encode(), f"v0:{stamp}:".encode() + post["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, post["headers"]["x-cio-signature"])
    assert abs(int(stamp) - time.time()) < 300
    event = json.loads(post["body"])
    assert not errors("reporting_webhooks", EVENT_SCHEMA, event), errors(
        "reporting_webhooks", EVENT_SCHEMA, event
    )
    return event


def test_crud(client: Client) -> None:
    hook = _hook(client, "https://example.com/h", ["email_sent"])
    assert hook["disabled"] is False and hook["events"] == ["email_sent"]
    listed = client.app("GET", "/v1/reporting_webhooks").json()["reporting_webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    path = f"/v1/reporting_webhooks/{hook['id']}"
    changed = client.app("PUT", path, {"disabled": True}).json()
    assert changed["disabled"] is True and changed["name"] == "test"
    assert client.app("GET", path).json() == changed
    assert client.app("DELETE", path).status_code == 200
    assert client.app("GET", path).status_code == 404
    bad = {"name": "x", "endpoint": "ftp://x", "events": ["email_sent"]}
    assert client.app("POST", "/v1/reporting_webhooks", bad).status_code == 400
    bad = {"name": "x", "endpoint": "https://x", "events": ["email_nope"]}
    assert client.app("POST", "/v1/reporting_webhooks", bad).status_code == 400


def test_email_sent_and_delivered_arrive_signed_and_valid(quick: Client, receiver: Receiver):
    _hook(quick, receiver.url, ["email_sent", "email_delivered"])
    send = {"transactional_message_id": 1, "to": "ada@example.com", "identifiers": {"id": "ada"}}
    delivery_id = quick.app("POST", "/v1/send/email", send).json()["delivery_id"]
    events = [_verified(p) for p in receiver.wait_for(2)]
    assert [(e["object_type"], e["metric"]) for e in events] == [
        ("email", "sent"),
        ("email", "delivered"),
    ]
    assert {e["data"]["delivery_id"] for e in events} == {delivery_id}
    assert events[0]["data"]["recipient"] == "ada@example.com"
    assert events[0]["data"]["transactional_message_id"] == 1
    assert events[0]["data"]["identifiers"]["id"] == "ada"


def test_failures_are_reported_with_their_reason(quick: Client, receiver: Receiver) -> None:
    _hook(quick, receiver.url, ["email_bounced", "email_dropped", "email_failed", "push_sent"])
    quick.app("POST", "/v1/esp/suppression/bounces/gone@example.com")
    sends = [
        {"to": "x@bounce.example.com"},
        {"to": "gone@example.com"},
        {"to": "device-token-1", "channel": "push"},
    ]
    for extra in sends:
        channel = extra.pop("channel", "email")
        body = {"transactional_message_id": 5 if channel == "push" else 1, **extra}
        body["identifiers"] = {"id": "bob"}
        assert quick.app("POST", f"/v1/send/{channel}", body).status_code == 200
    events = [_verified(p) for p in receiver.wait_for(3)]
    found = {(e["object_type"], e["metric"]) for e in events}
    assert found == {("email", "bounced"), ("email", "dropped"), ("push", "sent")}
    dropped = next(e for e in events if e["metric"] == "dropped")
    assert "suppression list" in dropped["data"]["failure_message"]


def test_unsubscribe_and_subscribe(quick: Client, receiver: Receiver) -> None:
    _hook(quick, receiver.url, ["customer_subscribed", "customer_unsubscribed"])
    quick.track("PUT", "/api/v1/customers/carol", {"email": "c@example.com", "unsubscribed": True})
    quick.track("PUT", "/api/v1/customers/carol", {"unsubscribed": False})
    events = [_verified(p) for p in receiver.wait_for(2)]
    assert [e["metric"] for e in events] == ["unsubscribed", "subscribed"]
    assert events[0]["data"]["identifiers"]["id"] == "carol"


def test_a_failing_handler_is_retried(quick: Client, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    _hook(quick, receiver.url, ["email_sent"])
    send = {"transactional_message_id": 1, "to": "d@example.com", "identifiers": {"id": "d"}}
    quick.app("POST", "/v1/send/email", send)
    posts = receiver.wait_for(3)
    assert [p["status"] for p in posts] == [500, 503, 200]
    assert len({json.loads(p["body"])["event_id"] for p in posts}) == 1


def test_disabled_webhooks_get_nothing(quick: Client, receiver: Receiver) -> None:
    hook = _hook(quick, receiver.url, ["email_sent"])
    quick.app("PUT", f"/v1/reporting_webhooks/{hook['id']}", {"disabled": True})
    second = _hook(quick, receiver.url + "?second", ["email_sent"])
    send = {"transactional_message_id": 1, "to": "e@example.com", "identifiers": {"id": "e"}}
    quick.app("POST", "/v1/send/email", send)
    receiver.wait_for(1)
    time.sleep(0.5)
    assert len(receiver.received) == 1 and second["id"] != hook["id"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.mark.slow
@pytest.mark.slow  # a real emulator process
def test_the_webhook_option_forwards_events_to_a_local_handler(receiver: Receiver) -> None:
    import os
    import subprocess
    import sys

    import requests

    from cio_flows.emulator import DEMO_CREDENTIALS

    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    command = [sys.executable, "-m", "cio_flows.emulator", "--port", "0", "--empty"]
    child = subprocess.Popen(
        [*command, "--webhook", receiver.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        url = first.rsplit(" ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:"), first
        send = {"transactional_message_id": 1, "to": "f@example.com", "identifiers": {"id": "f"}}
        answer = requests.post(
            url + "/v1/send/email",
            json=send,
            headers={"Authorization": f"Bearer {DEMO_CREDENTIALS.app_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        events = [_verified(p) for p in receiver.wait_for(2)]
        assert [e["metric"] for e in events] == ["sent", "delivered"]
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_broadcast_messages_report_their_trigger(quick: Client, receiver: Receiver) -> None:
    quick.emulator.configure(delivery={"sent": 0.1, "delivered": 0.2, "trigger": 0})
    _hook(quick, receiver.url, ["email_sent"])
    trigger = quick.app("POST", "/v1/campaigns/1/triggers", {"ids": ["user_0007"]}).json()["id"]
    (event,) = [_verified(p) for p in receiver.wait_for(1)]
    assert event["data"]["broadcast_id"] == 1 and event["data"]["trigger_id"] == trigger
    assert event["data"]["action_id"] == 1001
    assert event["data"]["identifiers"]["id"] == "user_0007"


def test_a_pipelines_unsubscribe_is_reported(quick: Client, receiver: Receiver) -> None:
    _hook(quick, receiver.url, ["customer_unsubscribed"])
    quick.pipelines("/identify", {"userId": "gil", "traits": {"unsubscribed": True}})
    (event,) = [_verified(p) for p in receiver.wait_for(1)]
    assert event["metric"] == "unsubscribed" and event["data"]["identifiers"]["id"] == "gil"
