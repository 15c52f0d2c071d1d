"""Track API v2: entity operations and batch with 207 per-item errors."""

from __future__ import annotations

from .conftest import eq


def person(action: str, ident: dict | None = None, **fields) -> dict:
    ident = {"id": "v2"} if ident is None else ident
    return {"type": "person", "identifiers": ident, "action": action, **fields}


def attrs(client, ident: str = "v2") -> dict | None:
    r = client.attributes(ident)
    return r.json()["customer"]["attributes"] if r.status_code == 200 else None


def test_entity_identify_event_delete(client, emu):
    assert (
        client.track(
            "POST", "/api/v2/entity", person("identify", attributes={"plan": "pro"})
        ).json()
        == {}
    )
    assert attrs(client)["plan"] == "pro"
    client.track("POST", "/api/v2/entity", person("event", name="purchase", attributes={"a": 1}))
    assert [
        e["name"] for e in emu.inspect.events() if e["person"] and e["person"]["id"] == "v2"
    ] == ["purchase"]
    client.track("POST", "/api/v2/entity", person("delete"))
    assert attrs(client) is None


def test_entity_errors_use_the_v2_shape(client):
    r = client.track("POST", "/api/v2/entity", person("event"))  # no name
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert error["field"] == "name" and error["reason"] == "required" and error["message"]
    r = client.track("POST", "/api/v2/entity", person("identify", {"id": "a", "email": "b@x.io"}))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "identifiers"


def test_entity_over_32kb(client):
    r = client.track(
        "POST",
        "/api/v2/entity",
        person("identify", attributes={"b": "x" * 800} | {f"k{i}": "y" * 900 for i in range(40)}),
    )
    assert r.status_code == 400


def test_batch_all_valid_answers_200(client):
    ops = [person("identify", {"id": f"bv{i}"}, attributes={"cohort": "v2b"}) for i in range(5)]
    r = client.track("POST", "/api/v2/batch", {"batch": ops})
    assert (r.status_code, r.json()) == (200, {})
    assert len(client.search(eq("cohort", "v2b")).json()["ids"]) == 5


def test_batch_207_names_invalid_items_and_keeps_valid_ones(client):
    ops = [
        person("identify", {"id": "ok-a"}, attributes={"cohort": "mix"}),
        person("identify", {}),
        person("event", {"id": "ok-a"}),
        {"type": "spaceship", "identifiers": {"id": "x"}, "action": "identify"},
        person("identify", {"id": "ok-b"}, attributes={"cohort": "mix"}),
        person("identify", {"id": "too-big"}, attributes={f"k{i}": "z" * 900 for i in range(40)}),
    ]
    r = client.track("POST", "/api/v2/batch", {"batch": ops})
    assert r.status_code == 207
    errs = r.json()["errors"]
    assert [e["batch_index"] for e in errs] == [1, 2, 3, 5]
    assert all(set(e) == {"batch_index", "reason", "field", "message"} for e in errs)
    assert sorted(client.search(eq("cohort", "mix")).json()["ids"]) == ["ok-a", "ok-b"]
    assert attrs(client, "too-big") is None


def test_batch_failed_item_leaves_nothing_half_done(client):
    # The device is invalid after the person would have been created: the item rolls back whole.
    bad = person("add_device", {"id": "half"}, device={"platform": "ios"})
    r = client.track("POST", "/api/v2/batch", {"batch": [bad]})
    assert r.status_code == 207
    assert attrs(client, "half") is None


def test_batch_over_500kb_is_refused_whole(client):
    ops = [
        person(
            "identify",
            {"id": f"big{i}"},
            attributes={"b": "x" * 1000} | {f"k{j}": "y" * 900 for j in range(30)},
        )
        for i in range(20)
    ]
    r = client.track("POST", "/api/v2/batch", {"batch": ops})
    assert r.status_code == 400
    assert r.json()["errors"][0]["message"]
    assert attrs(client, "big0") is None


def test_v2_devices_relationships_suppress_merge(client, emu):
    track = lambda op: client.track("POST", "/api/v2/entity", op)  # noqa: E731
    assert track(person("add_device", device={"token": "t1", "platform": "ios"})).status_code == 200
    assert [d["id"] for d in emu.inspect.devices()] == ["t1"]
    track(person("delete_device", device={"token": "t1"}))
    assert emu.inspect.devices() == []
    rel = [{"identifiers": {"object_type_id": "1", "object_id": "acme"}}]
    assert track(person("add_relationships", cio_relationships=rel)).status_code == 200
    obj = {
        "type": "object",
        "identifiers": {"object_type_id": "1", "object_id": "acme"},
        "action": "identify",
        "attributes": {"name": "Acme"},
    }
    assert track(obj).status_code == 200
    track(person("identify", {"id": "v2b"}, attributes={"only_b": 1}))
    r = track(
        {"type": "person", "action": "merge", "primary": {"id": "v2"}, "secondary": {"id": "v2b"}}
    )
    assert r.status_code == 200 and attrs(client)["only_b"] == "1" and attrs(client, "v2b") is None
    track(person("suppress"))
    assert attrs(client) is None
    track(person("identify"))
    assert attrs(client) is None
    track(person("unsuppress"))
    track(person("identify"))
    assert attrs(client) is not None


def test_phone_identifier_is_not_enabled(client):
    r = client.track("POST", "/api/v2/entity", person("identify", {"phone": "+14155552671"}))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "identifiers.phone"
