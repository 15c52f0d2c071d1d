"""Track API v1: people, events, devices, suppression, merge, manual segments, limits."""

from __future__ import annotations

import pytest
import requests

from .conftest import TRACK_AUTH


def attrs(client, ident: str, id_type: str = "id") -> dict:
    r = client.attributes(ident, id_type)
    return r.json()["customer"] if r.status_code == 200 else None


def errors(r) -> list[str]:
    return r.json()["meta"]["errors"]


def test_put_creates_then_updates(client):
    assert (
        client.track("PUT", "/api/v1/customers/42", {"email": "a@x.io", "plan": "free"}).json()
        == {}
    )
    client.track("PUT", "/api/v1/customers/42", {"plan": "pro", "seats": 3})
    c = attrs(client, "42")
    assert c["attributes"]["plan"] == "pro" and c["attributes"]["seats"] == "3"
    assert c["identifiers"] == {"id": "42", "email": "a@x.io", "cio_id": c["identifiers"]["cio_id"]}


def test_put_empty_string_removes_an_attribute(client):
    client.track("PUT", "/api/v1/customers/r1", {"plan": "pro", "tmp": "x"})
    client.track("PUT", "/api/v1/customers/r1", {"tmp": ""})
    assert "tmp" not in attrs(client, "r1")["attributes"]


def test_update_only_does_not_create(client):
    client.track("PUT", "/api/v1/customers/nobody", {"_update": True, "a": 1})
    assert attrs(client, "nobody") is None
    client.track("PUT", "/api/v1/customers/user_0001", {"_update": True, "a": 1})
    assert attrs(client, "user_0001")["attributes"]["a"] == "1"


def test_identifier_may_be_email_or_cio_id(client):
    client.track("PUT", "/api/v1/customers/jo%2Bnews@x.io", {"plan": "pro"})
    c = attrs(client, "jo+news@x.io", "email")
    assert c["identifiers"]["id"] is None and c["attributes"]["plan"] == "pro"
    cio_id = c["identifiers"]["cio_id"]
    client.track("PUT", f"/api/v1/customers/cio_{cio_id}", {"plan": "enterprise", "id": "jo"})
    c = attrs(client, cio_id, "cio_id")
    assert c["attributes"]["plan"] == "enterprise" and c["identifiers"]["id"] == "jo"


def test_delete_removes_person_and_their_events(client, emu):
    client.track("POST", "/api/v1/customers/user_0003/events", {"name": "e"})
    assert client.track("DELETE", "/api/v1/customers/user_0003").json() == {}
    assert attrs(client, "user_0003") is None
    assert not [e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "user_0003"]
    assert client.track("DELETE", "/api/v1/customers/never-existed").status_code == 200


def test_event_requires_name_and_dedupes_by_id(client, emu):
    r = client.track("POST", "/api/v1/customers/ev/events", {"data": {}})
    assert r.status_code == 400 and errors(r)
    body = {"name": "purchase", "id": "01HXYZ", "timestamp": 1700000000, "data": {"x": 1}}
    for _ in range(2):
        assert client.track("POST", "/api/v1/customers/ev/events", body).status_code == 200
    mine = [e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "ev"]
    assert [(e["name"], e["timestamp"], e["data"]) for e in mine] == [
        ("purchase", 1700000000, {"x": 1})
    ]


def test_anonymous_event(client, emu):
    r = client.track("POST", "/api/v1/events", {"name": "viewed", "anonymous_id": "an1"})
    assert r.status_code == 200
    (event,) = [e for e in emu.inspect.events() if e["anonymous_id"] == "an1"]
    assert event["person"] is None and event["name"] == "viewed"
    assert client.track("POST", "/api/v1/events", {"anonymous_id": "an1"}).status_code == 400


def test_suppress_deletes_and_blocks_until_unsuppressed(client):
    client.track("POST", "/api/v1/customers/user_0004/suppress")
    assert attrs(client, "user_0004") is None
    client.track("PUT", "/api/v1/customers/user_0004", {"a": 1})
    assert attrs(client, "user_0004") is None
    client.track("POST", "/api/v1/customers/user_0004/unsuppress")
    client.track("PUT", "/api/v1/customers/user_0004", {"a": 1})
    assert attrs(client, "user_0004") is not None


def test_devices_put_and_delete(client, emu):
    r = client.track(
        "PUT",
        "/api/v1/customers/dv/devices",
        {"device": {"id": "tok", "platform": "android", "last_used": 1700000000}},
    )
    assert r.status_code == 200
    assert [(d["id"], d["platform"]) for d in emu.inspect.devices()] == [("tok", "android")]
    assert attrs(client, "dv")["devices"][0]["id"] == "tok"
    assert client.track("DELETE", "/api/v1/customers/dv/devices/tok").status_code == 200
    assert emu.inspect.devices() == []


@pytest.mark.parametrize(
    "body", [{}, {"device": {"platform": "ios"}}, {"device": {"id": "t", "platform": "windows"}}]
)
def test_devices_invalid(client, body):
    r = client.track("PUT", "/api/v1/customers/dv/devices", body)
    assert r.status_code == 400 and errors(r)


def test_merge_customers(client):
    client.track("PUT", "/api/v1/customers/p1", {"a": "primary"})
    client.track("PUT", "/api/v1/customers/p2", {"a": "secondary", "b": "only-secondary"})
    r = client.track(
        "POST", "/api/v1/merge_customers", {"primary": {"id": "p1"}, "secondary": {"id": "p2"}}
    )
    assert r.status_code == 200
    assert attrs(client, "p2") is None
    merged = attrs(client, "p1")["attributes"]
    assert (merged["a"], merged["b"]) == ("primary", "only-secondary")


def test_merge_customers_rejects_two_identifiers(client):
    r = client.track(
        "POST",
        "/api/v1/merge_customers",
        {"primary": {"id": "p1", "email": "a@x.io"}, "secondary": {"id": "p2"}},
    )
    assert r.status_code == 400
    assert r.json()["meta"]["error"]


def test_manual_segment_add_and_remove(client):
    r = client.track("POST", "/api/v1/segments/8/add_customers", {"ids": ["user_0001", "nobody"]})
    assert r.status_code == 200
    members = client.app("GET", "/v1/segments/8/membership").json()["ids"]
    assert "user_0001" in members and len(members) == 13
    client.track("POST", "/api/v1/segments/8/remove_customers", {"ids": ["user_0001"]})
    assert "user_0001" not in client.app("GET", "/v1/segments/8/membership").json()["ids"]


def test_manual_segment_by_email_id_type(client):
    email = attrs(client, "user_0010")["identifiers"]["email"]
    client.track("POST", "/api/v1/segments/8/add_customers?id_type=email", {"ids": [email]})
    assert "user_0010" in client.app("GET", "/v1/segments/8/membership").json()["ids"]


def test_segment_membership_errors(client):
    assert (
        client.track("POST", "/api/v1/segments/1/add_customers", {"ids": ["a"]}).status_code == 400
    )
    assert (
        client.track("POST", "/api/v1/segments/999/add_customers", {"ids": ["a"]}).status_code
        == 404
    )
    assert client.track("POST", "/api/v1/segments/8/add_customers", {"ids": []}).status_code == 400


def test_region(client):
    r = client.track("GET", "/api/v1/accounts/region")
    assert r.json() == {"url": client.url, "region": "us", "environment_id": 1}


def test_form_encoded_put_like_the_old_curl_examples(client):
    r = requests.put(
        f"{client.url}/api/v1/customers/form1",
        data={"email": "f@x.io", "name": "Bob"},
        headers=TRACK_AUTH,
    )
    assert r.status_code == 200
    assert attrs(client, "form1")["attributes"]["name"] == "Bob"


LIMIT_CASES = {
    "id over 150 bytes": ("PUT", "/api/v1/customers/" + "i" * 151, {"a": 1}),
    "attribute name over 150 bytes": ("PUT", "/api/v1/customers/l1", {"n" * 151: 1}),
    "value over 1000 bytes": ("PUT", "/api/v1/customers/l1", {"v": "é" * 501}),
    "over 300 attributes": ("PUT", "/api/v1/customers/l1", {f"a{i}": i for i in range(301)}),
    "event name over 100 bytes": ("POST", "/api/v1/customers/l1/events", {"name": "e" * 101}),
    "event data over 100 KB": (
        "POST",
        "/api/v1/customers/l1/events",
        {"name": "e", "data": {"d": "x" * 102_400}},
    ),
}


@pytest.mark.parametrize("case", LIMIT_CASES.values(), ids=LIMIT_CASES.keys())
def test_limits_answer_400_and_store_nothing(client, emu, case):
    method, path, body = case
    r = client.track(method, path, body)
    assert r.status_code == 400 and errors(r)
    assert emu.inspect.person("l1") is None


def test_limits_at_the_boundary_pass(client):
    assert (
        client.track("PUT", "/api/v1/customers/" + "i" * 150, {"n" * 150: "v" * 1000}).status_code
        == 200
    )
    assert (
        client.track("PUT", "/api/v1/customers/b300", {f"a{i}": i for i in range(300)}).status_code
        == 200
    )
    assert (
        client.track("POST", "/api/v1/customers/b300/events", {"name": "e" * 100}).status_code
        == 200
    )
