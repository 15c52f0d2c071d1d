"""Segments: list, get, counts, membership paging, creation, and dynamic ones kept current."""

from __future__ import annotations


def count(client, seg_id: int) -> int:
    body = client.app("GET", f"/v1/segments/{seg_id}/customer_count").json()
    assert body["segment_id"] == seg_id
    return body["count"]


def members(client, seg_id: int, **params) -> dict:
    r = client.app("GET", f"/v1/segments/{seg_id}/membership", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_list_segments_shape(client):
    segments = client.app("GET", "/v1/segments").json()["segments"]
    assert len(segments) == 8
    for seg in segments:
        assert set(seg) >= {
            "id",
            "deduplicate_id",
            "name",
            "description",
            "state",
            "progress",
            "type",
            "tags",
            "created_at",
            "updated_at",
        }
    types = {s["name"]: s["type"] for s in segments}
    assert types["Beta testers"] == "manual" and types["Pro plan"] == "dynamic"


def test_get_segment_and_404(client):
    assert client.app("GET", "/v1/segments/2").json()["segment"]["name"] == "Enterprise"
    for missing in ("999", "abc"):
        r = client.app("GET", f"/v1/segments/{missing}")
        assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"
    assert client.app("GET", "/v1/segments/999/customer_count").status_code == 404
    assert client.app("GET", "/v1/segments/999/membership").status_code == 404


def test_counts_agree_with_the_workspace(client, emu):
    people = emu.inspect.people()
    pro = sum(p["attributes"]["plan"] == "pro" for p in people)
    ent = sum(p["attributes"]["plan"] == "enterprise" for p in people)
    assert count(client, 1) == pro and count(client, 2) == ent
    assert count(client, 6) == pro + ent  # defined by segment references
    assert count(client, 8) == 12


def test_membership_pages(client):
    everyone = members(client, 6, limit=30000)
    assert everyone["next"] == "" and len(everyone["ids"]) == count(client, 6)
    seen, start = [], None
    while True:
        page = members(client, 6, limit=10, **({"start": start} if start else {}))
        seen += page["ids"]
        start = page["next"]
        if not start:
            break
    assert seen == everyone["ids"]
    assert {i["id"] for i in everyone["identifiers"]} == set(everyone["ids"])


def test_membership_ids_hold_empty_string_for_people_without_id(client):
    client.app("POST", "/v1/segments", {"segment": {"name": "emails"}})
    client.track("PUT", "/api/v1/customers/only@mail.io", {"x": 1})
    client.track(
        "POST", "/api/v1/segments/9/add_customers?id_type=email", {"ids": ["only@mail.io"]}
    )
    body = members(client, 9)
    assert body["ids"] == [""] and body["identifiers"][0]["email"] == "only@mail.io"


def test_dynamic_segments_follow_changes(client):
    before = count(client, 1)
    client.pipelines("/identify", {"userId": "dyn", "traits": {"plan": "pro"}})
    assert count(client, 1) == before + 1 and "dyn" in members(client, 1, limit=1000)["ids"]
    client.track("PUT", "/api/v1/customers/dyn", {"plan": "free"})
    assert count(client, 1) == before
    client.track("PUT", "/api/v1/customers/dyn", {"plan": "pro"})
    client.track("DELETE", "/api/v1/customers/dyn")
    assert count(client, 1) == before


def test_person_segments_follow_changes(client):
    client.pipelines(
        "/identify", {"userId": "ps", "traits": {"plan": "enterprise", "country": "DE"}}
    )
    names = {s["name"] for s in client.app("GET", "/v1/customers/ps/segments").json()["segments"]}
    assert names == {"Enterprise", "EU customers", "Paying customers"}


def test_create_manual_segment_then_add_people(client):
    r = client.app(
        "POST", "/v1/segments", {"segment": {"name": "VIPs", "description": "hand-picked"}}
    )
    assert r.status_code == 200
    seg = r.json()["segment"]
    assert (seg["name"], seg["type"], seg["description"]) == ("VIPs", "manual", "hand-picked")
    assert count(client, seg["id"]) == 0
    client.track(
        "POST", f"/api/v1/segments/{seg['id']}/add_customers", {"ids": ["user_0001", "user_0002"]}
    )
    assert members(client, seg["id"])["ids"] == ["user_0001", "user_0002"]
    assert client.app("GET", f"/v1/segments/{seg['id']}").json()["segment"]["name"] == "VIPs"


def test_create_segment_needs_a_name(client):
    for body in ({}, {"segment": {}}, {"segment": {"name": ""}}, {"segment": "x"}):
        assert client.app("POST", "/v1/segments", body).status_code == 400


def test_membership_of_deleted_person_disappears(client):
    client.track("DELETE", "/api/v1/customers/user_0007")
    assert "user_0007" not in members(client, 8)["ids"]
    assert count(client, 8) == 11


def test_segment_reference_cycle_matches_nobody(client, emu):
    workspace = {
        "segments": [
            {"id": 1, "name": "A", "filter": {"segment": {"id": 2}}},
            {
                "id": 2,
                "name": "B",
                "filter": {
                    "or": [
                        {"segment": {"id": 1}},
                        {"attribute": {"field": "x", "operator": "exists"}},
                    ]
                },
            },
        ]
    }
    from cio_flows.emulator import Emulator

    with Emulator(workspace=workspace) as other:
        from .conftest import Client

        c = Client(other)
        c.track("PUT", "/api/v1/customers/p", {"x": 1})
        assert count(c, 2) == 1 and count(c, 1) == 1
