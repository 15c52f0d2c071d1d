"""Messages with a delivery lifecycle, API-triggered broadcasts, and per-person activities."""

from __future__ import annotations

import time

import pytest

FAST = {"sent": 0.05, "delivered": 0.15, "trigger": 0.05}
WELCOME = {"transactional_message_id": "welcome", "identifiers": {"id": "user_0001"}}


def until(fetch, done, timeout: float = 5.0):
    """Poll `fetch()` until `done(value)`; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def fast(emu):
    emu.configure(delivery=FAST)
    return emu


def message(client, delivery_id: str) -> dict:
    r = client.app("GET", f"/v1/messages/{delivery_id}")
    assert r.status_code == 200, r.text
    return r.json()["message"]


def send(client, channel: str, body: dict) -> str:
    r = client.app("POST", f"/v1/send/{channel}", body)
    assert r.status_code == 200, r.text
    return r.json()["delivery_id"]


# -- transactional lifecycle -----------------------------------------------------------------


def test_email_goes_created_then_sent_then_delivered(client, emu):
    emu.configure(delivery={"sent": 0.3, "delivered": 0.6})
    delivery_id = send(client, "email", WELCOME | {"to": "ann@example.com"})
    first = message(client, delivery_id)
    assert set(first["metrics"]) == {"created"}
    assert (first["type"], first["recipient"], first["failure_message"]) == (
        "email",
        "ann@example.com",
        None,
    )
    assert first["customer_identifiers"]["id"] == "user_0001"
    assert first["message_template_id"] == 1
    sent = until(lambda: message(client, delivery_id), lambda m: "sent" in m["metrics"])
    assert "delivered" not in sent["metrics"]
    done = until(lambda: message(client, delivery_id), lambda m: "delivered" in m["metrics"])
    m = done["metrics"]
    assert m["created"] <= m["sent"] <= m["delivered"] <= time.time()


def test_bounce_domain_bounces_with_a_failure_message(client, fast):
    delivery_id = send(client, "email", WELCOME | {"to": "gone@bounce.example.com"})
    msg = until(lambda: message(client, delivery_id), lambda m: "bounced" in m["metrics"])
    assert "delivered" not in msg["metrics"] and "sent" in msg["metrics"]
    assert "gone@bounce.example.com" in msg["failure_message"]
    bounced = client.app("GET", "/v1/messages", params={"metric": "bounced"}).json()["messages"]
    assert [x["id"] for x in bounced] == [delivery_id]


def test_push_needs_a_device(client, fast):
    push = {"transactional_message_id": "order_shipped", "identifiers": {"id": "user_0002"}}
    lonely = send(client, "push", push)
    msg = until(lambda: message(client, lonely), lambda m: "undeliverable" in m["metrics"])
    assert msg["failure_message"] == "the person has no devices" and "sent" not in msg["metrics"]
    r = client.track(
        "PUT", "/api/v1/customers/user_0002/devices", {"device": {"id": "tok-1", "platform": "ios"}}
    )
    assert r.status_code == 200
    delivered = send(client, "push", push)
    msg = until(lambda: message(client, delivered), lambda m: "delivered" in m["metrics"])
    assert (msg["type"], msg["recipient"], msg["failure_message"]) == ("push", "tok-1", None)
    acts = client.app(
        "GET", "/v1/customers/user_0002/activities", params={"type": "delivered_push"}
    ).json()["activities"]
    assert [(a["delivery_id"], a["delivery_type"]) for a in acts] == [(delivered, "ios")]


def test_push_custom_device_is_registered_first(client, fast):
    body = {
        "transactional_message_id": 5,
        "identifiers": {"id": "user_0003"},
        "custom_device": {"token": "tok-c", "platform": "android", "attributes": {"a": "1"}},
    }
    delivery_id = send(client, "push", body)
    devices = client.attributes("user_0003").json()["customer"]["devices"]
    assert [(d["id"], d["platform"], d["attributes"]) for d in devices] == [
        ("tok-c", "android", {"a": "1"})
    ]
    msg = until(lambda: message(client, delivery_id), lambda m: "delivered" in m["metrics"])
    assert msg["recipient"] == "tok-c"
    bad = body | {"custom_device": {"token": "t", "platform": "windows"}}
    assert client.app("POST", "/v1/send/push", bad).status_code == 400


def test_sms_is_a_twilio_message_and_drafts_stay_drafts(client, fast):
    sms = send(
        client,
        "sms",
        {"transactional_message_id": 6, "identifiers": {"id": "user_0003"}, "to": "+15551230000"},
    )
    draft = send(client, "email", WELCOME | {"to": "d@x.io", "queue_draft": True})
    time.sleep(0.2)
    assert message(client, sms)["type"] == "twilio"
    assert set(message(client, draft)["metrics"]) == {"created", "drafted"}
    listed = client.app("GET", "/v1/messages").json()["messages"]
    assert [m["id"] for m in listed] == [sms]  # drafts only with drafts=true
    drafts = client.app("GET", "/v1/messages", params={"drafts": "true"}).json()["messages"]
    assert [m["id"] for m in drafts] == [draft]


def test_scheduled_send_waits_for_send_at(client, fast):
    later = int(time.time()) + 3600
    delivery_id = send(client, "email", WELCOME | {"to": "s@x.io", "send_at": later})
    time.sleep(0.2)
    assert set(message(client, delivery_id)["metrics"]) == {"created"}


def test_message_list_filters_and_paging(client, fast):
    ids = [send(client, "email", WELCOME | {"to": f"p{i}@x.io"}) for i in range(5)]
    in_app = send(
        client, "in_app", {"transactional_message_id": 8, "identifiers": {"id": "user_0001"}}
    )
    seen, start = [], None
    while True:
        params = {"type": "email", "limit": 2} | ({"start": start} if start else {})
        page = client.app("GET", "/v1/messages", params=params).json()
        seen += [m["id"] for m in page["messages"]]
        start = page["next"]
        if not start:
            break
    assert seen == ids[::-1]  # newest first
    everything = client.app("GET", "/v1/messages").json()["messages"]
    assert everything[0]["id"] == in_app and everything[0]["type"] == "in_app"
    future = {"start_ts": int(time.time()) + 100, "end_ts": int(time.time()) + 200}
    assert client.app("GET", "/v1/messages", params=future).json()["messages"] == []
    assert client.app("GET", "/v1/messages", params={"type": "fax"}).status_code == 400
    assert client.app("GET", "/v1/messages", params={"campaign_id": "x"}).status_code == 400
    mine = client.app("GET", "/v1/customers/user_0001/messages", params={"limit": 3}).json()
    assert len(mine["messages"]) == 3 and mine["next"]
    assert client.app("GET", "/v1/messages/nope").status_code == 404


# -- broadcasts ------------------------------------------------------------------------------


def trigger(client, body: dict, broadcast: int = 1):
    return client.app("POST", f"/v1/campaigns/{broadcast}/triggers", body)


def status(client, trigger_id: int, broadcast: int = 1) -> dict:
    r = client.app("GET", f"/v1/campaigns/{broadcast}/triggers/{trigger_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_trigger_is_processed_with_a_message_per_recipient(client, emu):
    emu.configure(delivery={"sent": 0, "delivered": 0.1, "trigger": 0.3})
    r = trigger(
        client,
        {"ids": ["user_0001", "nobody", "user_0002", "user_0001"], "data": {"headline": "Hi"}},
    )
    assert r.status_code == 200 and set(r.json()) == {"id"}
    tid = r.json()["id"]
    first = status(client, tid)
    assert "processed_at" not in first and first["broadcast_id"] == 1
    assert client.app("GET", "/v1/messages", params={"broadcast_id": 1}).json()["messages"] == []
    done = until(lambda: status(client, tid), lambda s: "processed_at" in s)
    assert done["processed_at"] >= done["created_at"] and done["recipients_count"] == 2
    msgs = client.app("GET", "/v1/messages", params={"campaign_id": 1}).json()["messages"]
    assert sorted(m["customer_id"] for m in msgs) == ["user_0001", "user_0002"]
    assert {m["broadcast_id"] for m in msgs} == {1}
    assert msgs[0]["subject"] == "New in beta"
    errors = client.app("GET", f"/v1/campaigns/1/triggers/{tid}/errors").json()
    assert errors == {"errors": ["line 1: no person with id 'nobody'"], "next": ""}
    delivered = until(
        lambda: client.app(
            "GET", "/v1/messages", params={"broadcast_id": 1, "metric": "delivered"}
        ),
        lambda r: len(r.json()["messages"]) == 2,
    )
    assert len(delivered.json()["messages"]) == 2
    (record,) = emu.inspect.triggers()
    assert record["body"]["data"] == {"headline": "Hi"}
    listed = client.app("GET", "/v1/broadcasts/1/triggers").json()["triggers"]
    assert [t["id"] for t in listed] == [tid]


def test_trigger_audiences(client, fast):
    beta = {s["id"]: s for s in client.emulator.inspect.segments()}[8]["members"]
    whole = trigger(client, {}).json()["id"]
    assert until(lambda: status(client, whole), lambda s: s.get("processed_at"))[
        "recipients_count"
    ] == (len(beta))
    client.track("PUT", "/api/v1/customers/dup1", {"email": "same@x.io"})
    client.track("PUT", "/api/v1/customers/dup2", {"email": "same@x.io"})
    cases = [
        ({"emails": ["same@x.io"]}, 0, 1),
        ({"emails": ["same@x.io"], "email_add_duplicates": True}, 2, 0),
        ({"emails": ["nobody@x.io"], "email_ignore_missing": True}, 0, 0),
        ({"ids": ["nobody"], "id_ignore_missing": True}, 0, 0),
        ({"per_user_data": [{"id": "user_0004", "data": {"n": 1}}, {"email": "no@x.io"}]}, 1, 1),
        ({"recipients": {"segment": {"id": 8}}}, len(beta), 0),
        ({"data_file_url": "https://example.com/people.jsonl"}, 0, 1),
    ]
    for body, count, error_count in cases:
        tid = trigger(client, body).json()["id"]
        done = until(lambda tid=tid: status(client, tid), lambda s: s.get("processed_at"))
        errors = client.app("GET", f"/v1/campaigns/1/triggers/{tid}/errors").json()["errors"]
        assert (done["recipients_count"], len(errors)) == (count, error_count), body
    per_user = [m for m in client.emulator.inspect.messages() if m["customer_id"] == "user_0004"]
    assert per_user[-1]["body"] == {"data": {"n": 1}}


@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        ({"ids": ["a"], "emails": ["b@x.io"]}, 422),
        ({"ids": ["a"], "per_user_data": [{"id": "a"}]}, 422),
        ({"ids": []}, 400),
        ({"ids": "a"}, 400),
        ({"data": "x"}, 400),
        ({"data": {"big": "x" * 50_001}}, 400),
        ({"id_ignore_missing": "yes"}, 400),
        ({"recipients": {"attribute": {"field": "plan", "operator": "gt", "value": 1}}}, 400),
        ({"per_user_data": [{"data": {}}]}, 400),
    ],
)
def test_trigger_refuses_bad_bodies(client, body, status_code):
    r = trigger(client, body)
    assert r.status_code == status_code, r.text
    assert r.json()["errors"][0]["status"] == str(status_code)


def test_trigger_unknowns_are_404(client, fast):
    assert trigger(client, {}, broadcast=42).status_code == 404
    tid = trigger(client, {"ids": ["user_0001"]}).json()["id"]
    assert client.app("GET", f"/v1/campaigns/1/triggers/{tid + 5}").status_code == 404
    assert client.app("GET", f"/v1/campaigns/2/triggers/{tid}").status_code == 404
    assert client.app("GET", f"/v1/campaigns/1/triggers/{tid}/errors?start=x").status_code == 400
    assert client.app("GET", "/v1/broadcasts/9/triggers").status_code == 404


def test_trigger_rate_limit_and_queue(client, emu):
    emu.configure(limits="customerio", delivery={"trigger": 60})
    first = trigger(client, {"ids": ["user_0001"]})
    assert first.status_code == 200
    second = trigger(client, {"ids": ["user_0001"]})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 9
    emu.configure(limits={"triggers": 1000})
    codes = [trigger(client, {"ids": ["user_0001"]}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # at most 5 waiting to be processed


# -- activities ------------------------------------------------------------------------------


def test_activities_cover_events_attribute_changes_and_sends(client, fast):
    client.pipelines("/identify", {"userId": "act1", "traits": {"plan": "free"}})
    client.pipelines("/identify", {"userId": "act1", "traits": {"plan": "pro"}})
    client.pipelines("/identify", {"userId": "act1", "traits": {"plan": "pro"}})  # no change
    client.pipelines("/track", {"userId": "act1", "event": "purchase", "properties": {"n": 2}})
    client.pipelines("/page", {"userId": "act1", "name": "/pricing"})
    delivery_id = send(
        client, "email", WELCOME | {"identifiers": {"id": "act1"}, "to": "act1@x.io"}
    )
    until(lambda: message(client, delivery_id), lambda m: "delivered" in m["metrics"])

    def acts(**params) -> list[dict]:
        r = client.app("GET", "/v1/customers/act1/activities", params={"limit": 100, **params})
        assert r.status_code == 200, r.text
        return r.json()["activities"]

    changes = acts(type="attribute_change", name="plan")
    assert [a["data"] for a in changes] == [
        {"plan": {"from": "free", "to": "pro"}},
        {"plan": {"from": "", "to": "free"}},
    ]
    (event,) = acts(type="event")
    assert (event["name"], event["data"]) == ("purchase", {"n": 2})
    (page,) = acts(type="page")
    assert page["url"] == "/pricing"
    types = [a["type"] for a in acts() if a.get("delivery_id")]
    assert types == ["delivered_email", "sent_email"] or types == ["sent_email", "delivered_email"]
    assert {a["delivery_type"] for a in acts() if a.get("delivery_id")} == {"email"}
    assert len(acts(limit=2)) == 2
    assert client.app("GET", "/v1/customers/nobody/activities").status_code == 404


def test_person_messages_since_a_time_carry_the_template_each_send_named(client, emu):
    send(client, "email", WELCOME | {"to": "early@example.com"})
    since = int(time.time()) + 1
    while time.time() < since:  # start_ts is in whole seconds: the next one starts after
        time.sleep(0.02)
    later = send(client, "email", WELCOME | {"to": "later@example.com"})
    found = client.app(
        "GET", "/v1/customers/user_0001/messages", params={"start_ts": since, "id_type": "id"}
    ).json()["messages"]
    assert [(m["id"], m["recipient"]) for m in found] == [(later, "later@example.com")]
    assert found[0]["transactional_message_id"] == "welcome"
    # The per-person read documents msg_template_id as a string.
    assert found[0]["msg_template_id"] == str(found[0]["message_template_id"])
