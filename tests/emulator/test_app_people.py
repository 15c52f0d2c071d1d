"""App API people: search filter grammar, cursors, lookups, attributes, activity."""

from __future__ import annotations

import pytest

from .conftest import eq


def ids(client, flt, **params) -> list[str]:
    r = client.search(flt, **params)
    assert r.status_code == 200, r.text
    return r.json()["ids"]


def all_pages(client, flt, limit: int) -> tuple[list[str], int]:
    out, pages, start = [], 0, None
    while True:
        params = {"limit": limit} | ({"start": start} if start else {})
        body = client.search(flt, **params).json()
        pages += 1
        out += body["ids"]
        assert len(body["ids"]) <= limit
        if not body["next"]:
            return out, pages
        start = body["next"]


@pytest.fixture
def people(client):
    """Five people with known attributes, tagged so searches ignore the demo workspace."""
    rows = [
        ("a", {"plan": "pro", "age": 30, "vip": True}),
        ("b", {"plan": "pro", "age": 41}),
        ("c", {"plan": "free", "age": 30}),
        ("d", {"plan": "free"}),
        ("e", {"plan": "enterprise", "vip": False}),
    ]
    for pid, attributes in rows:
        client.track(
            "PUT", f"/api/v1/customers/{pid}", {"email": f"{pid}@t.io", "t": "yes", **attributes}
        )
    return rows


T = eq("t", "yes")


def test_search_response_shape(client, people):
    body = client.search({"and": [T, eq("plan", "pro")]}).json()
    assert set(body) == {"identifiers", "ids", "next"}
    assert body["ids"] == ["a", "b"] and body["next"] == ""
    first = body["identifiers"][0]
    assert set(first) == {"id", "email", "cio_id"} and first["email"] == "a@t.io"


GRAMMAR = {
    "and": ({"and": [T, eq("age", 30)]}, ["a", "c"]),
    "or": ({"and": [T, {"or": [eq("plan", "enterprise"), eq("age", 41)]}]}, ["b", "e"]),
    "not": ({"and": [T, {"not": eq("plan", "free")}]}, ["a", "b", "e"]),
    "exists": (
        {"and": [T, {"attribute": {"field": "age", "operator": "exists"}}]},
        ["a", "b", "c"],
    ),
    "not exists": (
        {"and": [T, {"not": {"attribute": {"field": "vip", "operator": "exists"}}}]},
        ["b", "c", "d"],
    ),
    "number as string": ({"and": [T, eq("age", "30")]}, ["a", "c"]),
    "boolean": ({"and": [T, eq("vip", True)]}, ["a"]),
    "boolean false": ({"and": [T, eq("vip", False)]}, ["e"]),
    "email field": (eq("email", "d@t.io"), ["d"]),
    "id field": ({"or": [eq("id", "a"), eq("id", "e")]}, ["a", "e"]),
    "nested": (
        {
            "and": [
                T,
                {
                    "or": [
                        {"and": [eq("plan", "pro"), {"not": eq("age", 30)}]},
                        eq("plan", "enterprise"),
                    ]
                },
            ]
        },
        ["b", "e"],
    ),
    "no match": ({"and": [T, eq("plan", "platinum")]}, []),
}


@pytest.mark.parametrize("case", GRAMMAR.values(), ids=GRAMMAR.keys())
def test_filter_grammar(client, people, case):
    flt, expected = case
    assert ids(client, flt) == expected


def test_cio_id_field_and_segment_filter(client, people):
    cio = client.attributes("c").json()["customer"]["identifiers"]["cio_id"]
    assert ids(client, eq("cio_id", cio)) == ["c"]
    pro = ids(client, {"segment": {"id": 1}}, limit=1000)
    assert "a" in pro and "b" in pro and "c" not in pro


BAD = {
    "two top-level keys": {"and": [T], "or": [T]},
    "empty object": {},
    "not an object": ["and"],
    "unknown key": {"xor": [T]},
    "empty and": {"and": []},
    "and not a list": {"and": T},
    "unknown operator": {"attribute": {"field": "a", "operator": "gt", "value": 1}},
    "eq without value": {"attribute": {"field": "a", "operator": "eq"}},
    "no field": {"attribute": {"operator": "exists"}},
    "segment without id": {"segment": {}},
    "nested bad": {"and": [T, {"not": {"a": 1, "b": 2}}]},
    "object value": {"attribute": {"field": "a", "operator": "eq", "value": {"x": 1}}},
}


@pytest.mark.parametrize("flt", BAD.values(), ids=BAD.keys())
def test_bad_filters_answer_400(client, flt):
    r = client.search(flt)
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert error["status"] == "400" and error["detail"]


def test_missing_filter_is_400(client):
    assert client.app("POST", "/v1/customers", {}).status_code == 400


def test_cursor_pages_cover_everything_once(client):
    everyone = {"attribute": {"field": "plan", "operator": "exists"}}
    collected, pages = all_pages(client, everyone, limit=7)
    assert len(collected) == 300 == len(set(collected))
    assert pages == 43  # 300 / 7, rounded up
    assert ids(client, everyone, limit=1000) == collected


def test_cursor_survives_writes_between_pages(client):
    everyone = {"attribute": {"field": "plan", "operator": "exists"}}
    first = client.search(everyone, limit=100).json()
    client.track("PUT", "/api/v1/customers/newcomer", {"plan": "free"})
    client.track("DELETE", "/api/v1/customers/user_0001")  # already seen: must not shift pages
    rest = client.search(everyone, limit=1000, start=first["next"]).json()["ids"]
    assert set(first["ids"]).isdisjoint(rest)
    assert len(rest) == 201 and rest[-1] == "newcomer"  # the 200 not yet seen, then the new one


def test_limit_defaults_and_bounds(client):
    everyone = {"attribute": {"field": "plan", "operator": "exists"}}
    assert len(ids(client, everyone)) == 50
    assert len(ids(client, everyone, limit=5000)) == 300  # clamped to 1000
    for bad in ("0", "-1", "ten"):
        assert client.search(everyone, limit=bad).status_code == 400
    assert client.search(everyone, start="not-a-cursor").status_code == 400


def test_lookup_by_email(client, people):
    body = client.app("GET", "/v1/customers", params={"email": "b@t.io"}).json()
    assert body == {
        "results": [{"email": "b@t.io", "id": "b", "cio_id": body["results"][0]["cio_id"]}]
    }
    assert client.app("GET", "/v1/customers", params={"email": "none@t.io"}).json() == {
        "results": []
    }
    assert client.app("GET", "/v1/customers").status_code == 400


def test_unencoded_plus_in_query_matches_nothing(client):
    client.track("PUT", "/api/v1/customers/plus", {"email": "jo+x@t.io"})
    r = client.http.get(
        f"{client.url}/v1/customers?email=jo+x@t.io",
        headers={"Authorization": "Bearer emulator-app-key"},
    )
    assert r.json() == {"results": []}
    assert client.app("GET", "/v1/customers", params={"email": "jo+x@t.io"}).json()["results"]


def test_attributes_shape(client, people):
    c = client.attributes("a").json()["customer"]
    assert c["id"] == "a"
    assert c["identifiers"] == {"id": "a", "email": "a@t.io", "cio_id": c["identifiers"]["cio_id"]}
    assert c["attributes"]["age"] == "30" and c["attributes"]["vip"] == "true"
    assert all(isinstance(v, str) for v in c["attributes"].values())
    assert set(c["timestamps"]) >= {"age", "plan", "vip", "email", "id"}
    assert all(isinstance(v, int) for v in c["timestamps"].values())
    assert c["unsubscribed"] is False


def test_attributes_by_id_type_and_404(client, people):
    cio = client.attributes("a").json()["customer"]["identifiers"]["cio_id"]
    assert client.attributes("a@t.io", "email").json()["customer"]["id"] == "a"
    assert client.attributes(cio, "cio_id").json()["customer"]["id"] == "a"
    r = client.attributes("zzz")
    assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"
    assert client.attributes("a", "phone").status_code == 400


def test_unsubscribed_flag(client):
    client.track("PUT", "/api/v1/customers/un", {"unsubscribed": True})
    assert client.attributes("un").json()["customer"]["unsubscribed"] is True


def test_bulk_attributes(client, people):
    r = client.app("POST", "/v1/customers/attributes", {"ids": ["a", "nobody", "c"]})
    assert [c["customer"]["id"] for c in r.json()["customers"]] == ["a", "c"]
    r = client.app("POST", "/v1/customers/attributes?id_type=email", {"ids": ["b@t.io"]})
    assert r.json()["customers"][0]["customer"]["id"] == "b"
    assert client.app("POST", "/v1/customers/attributes", {"ids": []}).status_code == 400
    assert client.app("POST", "/v1/customers/attributes", {"ids": ["x"] * 101}).status_code == 400


def test_customer_segments(client):
    body = client.app("GET", "/v1/customers/user_0007/segments").json()
    names = {s["name"] for s in body["segments"]}
    assert "Beta testers" in names
    plan = client.attributes("user_0007").json()["customer"]["attributes"]["plan"]
    assert ("Paying customers" in names) == (plan != "free")
    assert client.app("GET", "/v1/customers/nobody/segments").status_code == 404


def test_activities_and_messages_are_paged(client):
    for i in range(12):
        client.track(
            "POST", "/api/v1/customers/act/events", {"name": f"e{i}", "timestamp": 1700000000 + i}
        )
    first = client.app("GET", "/v1/customers/act/activities", params={"limit": 5}).json()
    assert [a["name"] for a in first["activities"]] == ["e11", "e10", "e9", "e8", "e7"]
    assert first["activities"][0]["type"] == "event" and first["next"]
    seen = [a["name"] for a in first["activities"]]
    start = first["next"]
    while start:
        page = client.app(
            "GET", "/v1/customers/act/activities", params={"limit": 5, "start": start}
        ).json()
        seen += [a["name"] for a in page["activities"]]
        start = page["next"]
    assert len(seen) == 12 == len(set(seen))
    send = {"transactional_message_id": "welcome", "identifiers": {"id": "act"}, "to": "act@t.io"}
    delivery = client.app("POST", "/v1/send/email", send).json()["delivery_id"]
    messages = client.app("GET", "/v1/customers/act/messages").json()
    assert [m["id"] for m in messages["messages"]] == [delivery] and messages["next"] == ""
    assert messages["messages"][0]["recipient"] == "act@t.io"
