"""The paths flows use most, end to end through each family."""

from __future__ import annotations

from .conftest import eq


def test_pipelines_identify_then_app_search_and_attributes(client):
    r = client.pipelines(
        "/identify", {"userId": "u1", "traits": {"email": "u1@x.io", "plan": "pro"}}
    )
    assert (r.status_code, r.json()) == (200, {})
    found = client.search(eq("email", "u1@x.io")).json()
    assert found["ids"] == ["u1"] and found["next"] == ""
    assert found["identifiers"][0]["email"] == "u1@x.io"
    customer = client.attributes("u1").json()["customer"]
    assert customer["attributes"]["plan"] == "pro"
    assert customer["identifiers"]["id"] == "u1"


def test_track_put_event_delete(client, emu):
    assert client.track("PUT", "/api/v1/customers/t1", {"email": "t1@x.io", "mrr": 49}).json() == {}
    r = client.track("POST", "/api/v1/customers/t1/events", {"name": "purchase", "data": {"a": 1}})
    assert r.status_code == 200
    assert [
        e["name"] for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "t1"
    ] == ["purchase"]
    assert client.attributes("t1").json()["customer"]["attributes"]["mrr"] == "49"
    assert client.track("DELETE", "/api/v1/customers/t1").status_code == 200
    assert client.attributes("t1").status_code == 404


def test_send_email_by_trigger_name(client, emu):
    r = client.app(
        "POST",
        "/v1/send/email",
        {
            "transactional_message_id": "welcome",
            "identifiers": {"id": "user_0001"},
            "to": "diego@example.org",
            "message_data": {"first_name": "Diego"},
        },
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"delivery_id", "queued_at"}
    (delivery,) = emu.inspect.deliveries()
    assert delivery["delivery_id"] == r.json()["delivery_id"]
    assert delivery["recipient"] == "diego@example.org"
    assert delivery["person"]["id"] == "user_0001"


def test_segments_list_and_membership(client):
    segments = client.app("GET", "/v1/segments").json()["segments"]
    assert {s["name"] for s in segments} >= {"Pro plan", "Beta testers"}
    members = client.app("GET", "/v1/segments/8/membership").json()
    assert len(members["ids"]) == 12 and members["next"] == ""


def test_pipelines_user_deleted(client):
    client.pipelines("/track", {"userId": "user_0002", "event": "User Deleted"})
    assert client.attributes("user_0002").status_code == 404
