"""Transactional sends: templates, identifiers, limits, deliveries, error shape."""

from __future__ import annotations

import pytest

from cio_flows.emulator import Emulator

from .conftest import Client

CHANNELS = {
    "email": "welcome",
    "push": "order_shipped",
    "sms": "login_code",
    "whatsapp": "appointment_reminder",
    "in_app": "feature_tour",
    "inbox_message": "inbox_notice",
}


def send(client, channel: str = "email", **body):
    payload = {"transactional_message_id": CHANNELS[channel], "identifiers": {"id": "user_0001"}}
    if channel in ("email", "sms"):
        payload["to"] = "user@x.io" if channel == "email" else "+15551234567"
    return client.app("POST", f"/v1/send/{channel}", payload | body)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_sends_and_records_a_delivery(client, emu, channel):
    r = send(client, channel, message_data={"k": "v"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"delivery_id", "queued_at"}
    assert isinstance(body["delivery_id"], str) and isinstance(body["queued_at"], int)
    (d,) = emu.inspect.deliveries()
    assert (d["delivery_id"], d["channel"], d["template"]) == (
        body["delivery_id"],
        channel,
        CHANNELS[channel],
    )
    assert d["person"]["id"] == "user_0001" and d["body"]["message_data"] == {"k": "v"}


def test_numeric_template_id(client, emu):
    assert send(client, transactional_message_id=4).status_code == 200
    assert send(client, transactional_message_id="4").status_code == 200
    assert [d["template_id"] for d in emu.inspect.deliveries()] == [4, 4]


def test_unknown_template_is_404_with_meta_error(client, emu):
    r = send(client, transactional_message_id="nope")
    assert r.status_code == 404
    assert set(r.json()) == {"meta"} and r.json()["meta"]["error"]
    assert send(client, transactional_message_id=999).status_code == 404
    assert emu.inspect.deliveries() == []


def test_template_on_the_wrong_channel_is_400(client):
    r = send(client, "sms", transactional_message_id="welcome")
    assert r.status_code == 400 and "email" in r.json()["meta"]["error"]


def test_trigger_names_are_case_insensitive(client):
    assert send(client, transactional_message_id="WeLcOmE").status_code == 200


def test_auto_create_makes_a_template_on_this_channel(client):
    assert send(client, transactional_message_id="brand_new").status_code == 404
    assert send(client, transactional_message_id="brand_new", auto_create=True).status_code == 200
    assert send(client, transactional_message_id="brand_new").status_code == 200
    assert send(client, "sms", transactional_message_id="brand_new").status_code == 400
    r = send(client, "sms", transactional_message_id="login_code", auto_create=True)
    assert r.status_code == 200
    assert send(client, transactional_message_id=777, auto_create=True).status_code == 404


def test_email_without_template_needs_body_subject_and_from(client, emu):
    full = {"to": "a@x.io", "subject": "Hi", "body": "<p>Hi</p>", "from": "us@x.io"}
    r = client.app("POST", "/v1/send/email", full)
    assert r.status_code == 200
    (d,) = emu.inspect.deliveries()
    assert (d["template"], d["person"], d["subject"]) == (None, None, "Hi")
    partial = {k: v for k, v in full.items() if k != "from"}
    assert client.app("POST", "/v1/send/email", partial).status_code == 400


@pytest.mark.parametrize(
    "identifiers", [None, {}, {"id": "a", "email": "b@x.io"}, {"phone": "1"}, "a"]
)
def test_identifiers_must_be_exactly_one(client, identifiers):
    r = send(client, "push", identifiers=identifiers)
    assert r.status_code == 400 and r.json()["meta"]["error"]


def test_missing_template_id_is_400(client):
    r = client.app("POST", "/v1/send/email", {"identifiers": {"id": "user_0001"}})
    assert r.status_code == 400


def test_unknown_person_is_created(client):
    assert send(client, identifiers={"email": "fresh@x.io"}).status_code == 200
    assert client.app("GET", "/v1/customers", params={"email": "fresh@x.io"}).json()["results"]


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_to_is_required_for_email_and_sms(client, channel):
    for to in (None, "", 5):
        r = send(client, channel, to=to)
        assert r.status_code == 400 and r.json() == {"meta": {"error": "'to' is required"}}
    assert send(client, "push").status_code == 200  # push needs no 'to'


def test_identifiers_are_optional_for_email_only(client):
    body = {"transactional_message_id": "welcome", "to": "x@y.io"}
    assert client.app("POST", "/v1/send/email", body).status_code == 200
    body = {"transactional_message_id": "login_code", "to": "+15551234567"}
    assert client.app("POST", "/v1/send/sms", body).status_code == 400


def test_at_most_15_recipients(client):
    to = ",".join(f"p{i}@x.io" for i in range(10))
    bcc = [f"b{i}@x.io" for i in range(6)]
    assert send(client, to=to, bcc=bcc).status_code == 400
    assert send(client, to=to, bcc=bcc[:5]).status_code == 200


def test_payload_limits(client):
    assert send(client, body="x" * (1024 * 1024 + 10)).status_code == 400
    assert send(client, "push", message="x" * (1024 * 1024 + 10)).status_code == 400
    attachment = "a" * (1024 * 1024)
    assert send(client, attachments={"f.txt": attachment}).status_code == 200
    assert (
        send(client, attachments={"f.txt": attachment, "g.txt": attachment * 2}).status_code == 400
    )


def test_sends_are_not_idempotent(client, emu):
    first, second = send(client), send(client)
    assert first.json()["delivery_id"] != second.json()["delivery_id"]
    assert len(emu.inspect.deliveries()) == 2


def test_empty_workspace_accepts_any_template():
    with Emulator(workspace={}) as emu:
        c = Client(emu)
        r = c.app(
            "POST",
            "/v1/send/email",
            {"transactional_message_id": "anything", "identifiers": {"id": "u"}, "to": "u@x.io"},
        )
        assert r.status_code == 200
        assert emu.inspect.deliveries()[0]["template"] == "anything"


def test_edited_transactional_content_is_what_later_sends_carry(client) -> None:
    edit = {"subject": "Edited {{ trigger.name }}", "body": "<p>New body</p>"}
    r = client.app("PUT", "/v1/transactional/1/content/1", edit)
    assert r.status_code == 200, r.text
    (content,) = r.json()["content"]
    assert (content["subject"], content["body"]) == (edit["subject"], edit["body"])
    send = {
        "transactional_message_id": 1,
        "to": "ed@example.com",
        "identifiers": {"id": "ed"},
        "message_data": {"name": "Ed"},
    }
    delivery = client.app("POST", "/v1/send/email", send).json()["delivery_id"]
    message = client.app("GET", f"/v1/messages/{delivery}").json()["message"]
    assert message["subject"] == "Edited Ed"
    assert client.app("PUT", "/v1/transactional/1/content/2", edit).status_code == 404
    assert client.app("PUT", "/v1/transactional/1/content/1", {"body": 5}).status_code == 400
