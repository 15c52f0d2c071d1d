"""Objects and relationships stored through Track read back through the App API."""

from __future__ import annotations

from .conftest import Client

ACME = {
    "type": "object",
    "identifiers": {"object_type_id": "1", "object_id": "acme"},
    "action": "identify",
    "attributes": {"plan": "pro", "seats": 12},
    "cio_relationships": [
        {"identifiers": {"id": "user_0001"}, "relationship_attributes": {"role": "admin"}}
    ],
}


def test_objects_read_back(client: Client) -> None:
    assert client.track("POST", "/api/v2/entity", ACME).status_code == 200
    types = client.app("GET", "/v1/object_types").json()["types"]
    assert [t["id"] for t in types] == ["1"]
    obj = client.app("GET", "/v1/objects/1/acme/attributes").json()["object"]
    assert obj["attributes"] == {"plan": "pro", "seats": "12"}
    assert obj["identifiers"]["object_id"] == "acme" and obj["object_type_id"] == "1"
    people = client.app("GET", "/v1/objects/1/acme/relationships").json()
    assert [p["identifiers"]["id"] for p in people["cio_relationships"]] == ["user_0001"]
    mine = client.app("GET", "/v1/customers/user_0001/relationships").json()["cio_relationships"]
    assert [(r["object_type_id"], r["identifiers"]["object_id"]) for r in mine] == [(1, "acme")]
    assert mine[0]["attributes"] == {"role": "admin"}
    assert client.app("GET", "/v1/objects/1/nope/attributes").status_code == 404


def test_object_search(client: Client) -> None:
    client.track("POST", "/api/v2/entity", ACME)
    other = {**ACME, "identifiers": {"object_type_id": "1", "object_id": "beta"}}
    client.track("POST", "/api/v2/entity", {**other, "attributes": {"plan": "free"}})
    flt = {"object_attribute": {"field": "plan", "operator": "eq", "value": "pro", "type_id": "1"}}
    found = client.app("POST", "/v1/objects", {"object_type_id": "1", "filter": flt}).json()
    assert found["ids"] == ["acme"] and found["identifiers"][0]["object_id"] == "acme"
    everyone = {"object_attribute": {"field": "plan", "operator": "exists", "type_id": "1"}}
    found = client.app("POST", "/v1/objects", {"object_type_id": "1", "filter": everyone}).json()
    assert found["ids"] == ["acme", "beta"] and found["next"] == ""
