"""Devices, manual segments, suppression, merge/alias and objects, on every API that carries them."""

from __future__ import annotations

import pytest


def devices(client, ident: str) -> list[tuple[str, str | None]]:
    r = client.attributes(ident)
    assert r.status_code == 200, r.text
    return [(d["id"], d["platform"]) for d in r.json()["customer"]["devices"]]


def v2(client, op: dict):
    r = client.track("POST", "/api/v2/entity", op)
    assert r.status_code == 200, r.text
    return r


def person(ident: str, action: str, **extra) -> dict:
    return {"type": "person", "identifiers": {"id": ident}, "action": action, **extra}


# -- devices ---------------------------------------------------------------------------------


def test_devices_on_every_api_show_in_the_attributes_answer(client):
    client.track("PUT", "/api/v1/customers/dv/devices", {"device": {"id": "t1", "platform": "ios"}})
    device_event = {
        "userId": "dv",
        "event": "Device Created or Updated",
        "context": {"device": {"token": "t2", "type": "android"}},
        "properties": {"app_version": "2.1"},
    }
    client.pipelines("/track", device_event, headers={"X-Strict-Mode": "1"})
    v2(client, person("dv", "add_device", device={"token": "t3", "platform": "ios"}))
    assert sorted(devices(client, "dv")) == [("t1", "ios"), ("t2", "android"), ("t3", "ios")]
    attrs = {
        d["id"]: d["attributes"] for d in client.attributes("dv").json()["customer"]["devices"]
    }
    assert attrs["t2"] == {"app_version": "2.1"}
    client.track("DELETE", "/api/v1/customers/dv/devices/t1")
    client.pipelines(
        "/track",
        {"userId": "dv", "event": "Device Deleted", "context": {"device": {"token": "t2"}}},
    )
    v2(client, person("dv", "delete_device", device={"token": "t3"}))
    assert devices(client, "dv") == []


def test_a_token_belongs_to_one_person(client):
    client.track("PUT", "/api/v1/customers/a1/devices", {"device": {"id": "tk", "platform": "ios"}})
    client.track("PUT", "/api/v1/customers/a2/devices", {"device": {"id": "tk", "platform": "ios"}})
    assert (devices(client, "a1"), devices(client, "a2")) == ([], [("tk", "ios")])
    # Deleting it for someone unknown leaves the owner's device alone.
    client.pipelines(
        "/track",
        {"userId": "ghost", "event": "Device Deleted", "context": {"device": {"token": "tk"}}},
    )
    assert devices(client, "a2") == [("tk", "ios")]


# -- manual segments -------------------------------------------------------------------------


def test_manual_segment_round_trip(client):
    r = client.app("POST", "/v1/segments", {"segment": {"name": "Beta 2", "description": "qa"}})
    seg = r.json()["segment"]
    assert (seg["type"], seg["name"]) == ("manual", "Beta 2")
    path = f"/api/v1/segments/{seg['id']}"
    ids = ["user_0001", "user_0002", "nobody"]
    assert client.track("POST", f"{path}/add_customers", {"ids": ids}).status_code == 200
    by_email = {"ids": ["ana.evans2@example.net"]}
    client.track("POST", f"{path}/remove_customers", by_email, params={"id_type": "email"})
    members = client.app("GET", f"/v1/segments/{seg['id']}/membership").json()["ids"]
    assert members == ["user_0001"]
    mine = client.app("GET", "/v1/customers/user_0001/segments").json()["segments"]
    assert seg["id"] in [s["id"] for s in mine]
    assert seg["id"] in [s["id"] for s in client.app("GET", "/v1/segments").json()["segments"]]
    r = client.app("DELETE", f"/v1/segments/{seg['id']}")
    assert (r.status_code, r.content) == (204, b"")
    assert client.app("GET", f"/v1/segments/{seg['id']}").status_code == 404
    assert client.app("DELETE", f"/v1/segments/{seg['id']}").status_code == 404
    assert client.track("POST", f"{path}/add_customers", {"ids": ids}).status_code == 404
    mine = client.app("GET", "/v1/customers/user_0001/segments").json()["segments"]
    assert seg["id"] not in [s["id"] for s in mine]


def test_dynamic_segments_refuse_membership_changes_and_deletion(client):
    r = client.track("POST", "/api/v1/segments/1/add_customers", {"ids": ["user_0001"]})
    assert r.status_code == 400 and r.json()["meta"]["errors"]
    assert client.app("DELETE", "/v1/segments/1").status_code == 400
    assert client.app("GET", "/v1/segments/1").status_code == 200


# -- suppression -----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["pipelines", "track_v1", "track_v2"])
def test_suppression_deletes_and_blocks_until_unsuppressed(client, emu, api):
    client.pipelines("/identify", {"userId": "sup", "traits": {"email": "sup@x.io", "a": 1}})

    def call(action: str) -> None:
        if api == "pipelines":
            event = {"suppress": "User Suppressed", "unsuppress": "User Unsuppressed"}[action]
            client.pipelines("/track", {"userId": "sup", "event": event})
        elif api == "track_v1":
            client.track("POST", f"/api/v1/customers/sup/{action}")
        else:
            v2(client, person("sup", action))

    call("suppress")
    assert client.attributes("sup").status_code == 404
    assert "sup" in emu.inspect.suppressions()
    client.pipelines("/identify", {"userId": "sup", "traits": {"b": 2}})
    client.track("PUT", "/api/v1/customers/sup", {"c": 3})
    client.track("POST", "/api/v1/customers/sup/events", {"name": "e"})
    assert client.attributes("sup").status_code == 404
    call("unsuppress")
    client.pipelines("/identify", {"userId": "sup", "traits": {"b": 2}})
    attrs = client.attributes("sup").json()["customer"]["attributes"]
    assert attrs["b"] == "2" and "a" not in attrs  # the old profile is not restored


# -- merge / alias ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["pipelines_alias", "track_v1", "track_v2"])
def test_merge_moves_everything_to_the_primary(client, emu, api):
    client.pipelines("/identify", {"userId": "prim", "traits": {"plan": "pro"}})
    client.pipelines("/identify", {"userId": "sec", "traits": {"plan": "free", "extra": "x"}})
    client.pipelines("/track", {"userId": "sec", "event": "clicked"})
    client.track("POST", "/api/v1/segments/8/add_customers", {"ids": ["sec"]})
    if api == "pipelines_alias":
        client.pipelines("/alias", {"userId": "prim", "previousId": "sec"})
    elif api == "track_v1":
        body = {"primary": {"id": "prim"}, "secondary": {"id": "sec"}}
        assert client.track("POST", "/api/v1/merge_customers", body).status_code == 200
    else:
        merge = {
            "type": "person",
            "action": "merge",
            "primary": {"id": "prim"},
            "secondary": {"id": "sec"},
        }
        v2(client, merge)
    assert client.attributes("sec").status_code == 404
    attrs = client.attributes("prim").json()["customer"]["attributes"]
    assert (attrs["plan"], attrs["extra"]) == ("pro", "x")  # the primary's values win
    events = [
        e["name"] for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "prim"
    ]
    assert events == ["clicked"]
    segments = client.app("GET", "/v1/customers/prim/segments").json()["segments"]
    assert 8 in [s["id"] for s in segments]


# -- objects and relationships ---------------------------------------------------------------


def objects(emu) -> dict[tuple[str, str], dict]:
    return {(o["object_type_id"], o["object_id"]): o for o in emu.inspect.objects()}


def related(obj: dict) -> dict[str, dict]:
    return {r["person"]["id"]: r["attributes"] for r in obj["relationships"]}


def test_pipelines_objects_and_relationships(client, emu):
    group = {
        "userId": "op1",
        "groupId": "acme",
        "traits": {
            "name": "Acme",
            "object_type_id": "2",
            "relationshipAttributes": {"role": "admin"},
        },
    }
    client.pipelines("/group", group, headers={"X-Strict-Mode": "1"})
    client.pipelines("/group", group | {"userId": "op2", "traits": {"object_type_id": "2"}})
    acme = objects(emu)[("2", "acme")]
    assert acme["attributes"] == {"name": "Acme"}
    assert related(acme) == {"op1": {"role": "admin"}, "op2": {}}
    client.pipelines(
        "/track",
        {
            "userId": "op1",
            "event": "Relationship Deleted",
            "properties": {"objectId": "acme", "objectTypeId": 2},
        },
    )
    assert related(objects(emu)[("2", "acme")]) == {"op2": {}}
    client.pipelines(
        "/track",
        {
            "anonymousId": "a",
            "event": "Object Deleted",
            "properties": {"objectId": "acme", "objectTypeId": 2},
        },
    )
    assert ("2", "acme") not in objects(emu)


def test_track_v2_objects_and_relationships(client, emu):
    obj = {"type": "object", "identifiers": {"object_type_id": "1", "object_id": "globex"}}
    v2(client, obj | {"action": "identify", "attributes": {"plan": "enterprise"}})
    v2(
        client,
        obj
        | {
            "action": "add_relationships",
            "cio_relationships": [
                {"identifiers": {"id": "user_0001"}, "relationship_attributes": {"role": "owner"}}
            ],
        },
    )
    rel = [{"identifiers": {"object_type_id": "1", "object_id": "globex"}}]
    v2(client, person("user_0002", "add_relationships", cio_relationships=rel))
    globex = objects(emu)[("1", "globex")]
    assert globex["attributes"] == {"plan": "enterprise"}
    assert related(globex) == {"user_0001": {"role": "owner"}, "user_0002": {}}
    v2(client, person("user_0002", "delete_relationships", cio_relationships=rel))
    drop = [{"identifiers": {"id": "user_0001"}}]
    v2(client, obj | {"action": "delete_relationships", "cio_relationships": drop})
    assert related(objects(emu)[("1", "globex")]) == {}
    v2(client, obj | {"action": "delete"})
    assert objects(emu) == {}
