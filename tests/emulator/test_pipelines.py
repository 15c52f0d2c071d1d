"""Pipelines API: calls, batch, dedupe, semantic events, limits, strict mode."""

from __future__ import annotations

from .conftest import eq

STRICT = {"X-Strict-Mode": "1"}


def people_ids(emu) -> set:
    return {p["id"] for p in emu.inspect.people()}


def events_of(emu, user_id: str) -> list[dict]:
    return [e for e in emu.inspect.events() if e["person"] and e["person"]["id"] == user_id]


def test_identify_sets_traits_email_and_created_at(client, emu):
    r = client.pipelines(
        "/identify",
        {
            "userId": "u1",
            "traits": {"email": "u1@x.io", "createdAt": "2024-05-01T10:00:00Z", "plan": "pro"},
        },
    )
    assert (r.status_code, r.json()) == (200, {})
    person = emu.inspect.person("u1")
    assert person["email"] == "u1@x.io"
    assert person["attributes"] == {"created_at": 1714557600, "plan": "pro"}


def test_identify_by_email_only_creates_a_person_with_email(client, emu):
    client.pipelines("/identify", {"anonymousId": "anon-1", "traits": {"email": "solo@x.io"}})
    person = emu.inspect.person(email="solo@x.io")
    assert person is not None and person["id"] is None and person["cio_id"]


def test_later_identify_with_id_joins_the_email_only_person(client, emu):
    client.pipelines("/identify", {"anonymousId": "a", "traits": {"email": "j@x.io"}})
    client.pipelines("/identify", {"userId": "j1", "traits": {"email": "j@x.io"}})
    matches = [p for p in emu.inspect.people() if p["email"] == "j@x.io"]
    assert [p["id"] for p in matches] == ["j1"]


def test_track_page_screen_store_events_with_types(client, emu):
    client.pipelines("/track", {"userId": "u2", "event": "purchase", "properties": {"amount": 5}})
    client.pipelines("/page", {"userId": "u2", "name": "Pricing"})
    client.pipelines("/screen", {"userId": "u2", "name": "Home"})
    got = [(e["type"], e["name"], e["data"]) for e in events_of(emu, "u2")]
    assert got == [
        ("event", "purchase", {"amount": 5}),
        ("page", "Pricing", {}),
        ("screen", "Home", {}),
    ]


def test_track_timestamp_is_iso8601(client, emu):
    client.pipelines("/track", {"userId": "u3", "event": "e", "timestamp": "2024-01-02T03:04:05Z"})
    assert events_of(emu, "u3")[0]["timestamp"] == 1704164645
    r = client.pipelines(
        "/track", {"userId": "u3", "event": "e", "timestamp": 1704164645}, headers=STRICT
    )
    assert r.status_code == 400


def test_anonymous_events_join_the_person_on_identify(client, emu):
    client.pipelines("/track", {"anonymousId": "anon-9", "event": "viewed"})
    client.pipelines("/identify", {"userId": "u9", "anonymousId": "anon-9"})
    assert [e["name"] for e in events_of(emu, "u9")] == ["viewed"]


def test_same_message_id_is_stored_once(client, emu):
    body = {"userId": "u4", "event": "e", "messageId": "m-1"}
    for _ in range(3):
        assert client.pipelines("/track", body).status_code == 200
    client.pipelines("/batch", {"batch": [{"type": "track", **body}]})
    assert len(events_of(emu, "u4")) == 1


def test_group_creates_object_and_relationship(client, emu):
    client.pipelines("/group", {"userId": "u5", "groupId": "acme", "traits": {"name": "Acme"}})
    objects = emu.call(lambda: emu._state.store.db.execute("SELECT * FROM objects").fetchall())
    rels = emu.call(lambda: emu._state.store.db.execute("SELECT * FROM relationships").fetchall())
    assert objects == [("1", "acme", '{"name":"Acme"}')]
    assert len(rels) == 1


def test_alias_merges_previous_id_into_user(client, emu):
    client.pipelines("/identify", {"userId": "old", "traits": {"a": 1}})
    client.pipelines("/identify", {"userId": "new", "traits": {"b": 2}})
    client.pipelines("/alias", {"previousId": "old", "userId": "new"})
    assert "old" not in people_ids(emu)
    assert emu.inspect.person("new")["attributes"] == {"a": 1, "b": 2}


def test_user_deleted_semantic_event(client, emu):
    client.pipelines("/identify", {"userId": "gone", "traits": {"a": 1}})
    client.pipelines("/track", {"userId": "gone", "event": "User Deleted"})
    assert "gone" not in people_ids(emu)


def test_user_suppressed_blocks_identify_until_unsuppressed(client, emu):
    client.pipelines("/identify", {"userId": "s1"})
    client.pipelines("/track", {"userId": "s1", "event": "User Suppressed"})
    assert "s1" not in people_ids(emu)
    client.pipelines("/identify", {"userId": "s1"})
    assert "s1" not in people_ids(emu)
    client.pipelines("/track", {"userId": "s1", "event": "User Unsuppressed"})
    client.pipelines("/identify", {"userId": "s1"})
    assert "s1" in people_ids(emu)


def test_device_created_and_deleted(client, emu):
    device = {"context": {"device": {"token": "tok-1", "type": "ios"}}}
    client.pipelines("/track", {"userId": "d1", "event": "Device Created or Updated", **device})
    assert [(d["id"], d["platform"]) for d in emu.inspect.devices()] == [("tok-1", "ios")]
    client.pipelines("/track", {"userId": "d1", "event": "Device Deleted", **device})
    assert emu.inspect.devices() == []


def test_object_and_relationship_deleted(client, emu):
    client.pipelines("/group", {"userId": "o1", "groupId": "g1"})
    client.pipelines(
        "/track",
        {"userId": "o1", "event": "Relationship Deleted", "properties": {"objectId": "g1"}},
    )
    db = emu._state.store.db
    assert emu.call(lambda: db.execute("SELECT COUNT(*) FROM relationships").fetchone()[0]) == 0
    client.pipelines(
        "/track", {"userId": "o1", "event": "Object Deleted", "properties": {"objectId": "g1"}}
    )
    assert emu.call(lambda: db.execute("SELECT COUNT(*) FROM objects").fetchone()[0]) == 0


def test_semantic_events_are_not_stored_as_events(client, emu):
    client.pipelines("/identify", {"userId": "x"})
    client.pipelines("/track", {"userId": "x", "event": "User Suppressed"})
    assert not [e for e in emu.inspect.events() if e["name"] == "User Suppressed"]


def test_batch_mixes_types(client, emu):
    batch = [
        {"type": "identify", "userId": "b1", "traits": {"cohort": "b"}},
        {"type": "track", "userId": "b1", "event": "e1"},
        {"type": "page", "userId": "b1", "name": "p"},
    ]
    assert client.pipelines("/batch", {"batch": batch}).json() == {}
    assert emu.inspect.person("b1")["attributes"] == {"cohort": "b"}
    assert len(events_of(emu, "b1")) == 2
    assert client.search(eq("cohort", "b")).json()["ids"] == ["b1"]


def test_permissive_batch_keeps_valid_items_and_drops_invalid(client, emu):
    batch = [
        {"type": "identify", "userId": "ok1"},
        {"type": "identify"},  # no userId
        {"type": "bogus", "userId": "x"},
        {"type": "track", "userId": "ok1", "event": "e", "properties": {"pad": "x" * 33_000}},
        {"type": "track", "userId": "ok1", "event": "kept"},
    ]
    assert client.pipelines("/batch", {"batch": batch}).status_code == 200
    assert [e["name"] for e in events_of(emu, "ok1")] == ["kept"]


def test_strict_batch_with_one_invalid_item_stores_nothing(client, emu):
    batch = [{"type": "identify", "userId": "sb1"}, {"type": "track", "userId": "sb1"}]
    r = client.pipelines("/batch", {"batch": batch}, headers=STRICT)
    assert r.status_code == 400
    assert "batch[1]" in r.json()["meta"]["errors"][0]
    assert emu.inspect.person("sb1") is None


def test_strict_mode_reports_missing_user(client):
    r = client.pipelines("/identify", {"traits": {"a": 1}}, headers=STRICT)
    assert r.status_code == 400
    assert r.json() == {"meta": {"errors": ["userId or anonymousId is required"]}}
    assert client.pipelines("/track", {"userId": "a"}, headers=STRICT).status_code == 400


def test_call_over_32kb(client, emu):
    big = {"userId": "big", "traits": {"blob": "x" * 33_000}}
    assert client.pipelines("/identify", big).status_code == 200  # permissive: dropped
    assert emu.inspect.person("big") is None
    assert client.pipelines("/identify", big, headers=STRICT).status_code == 400
    under = {"userId": "big", "traits": {"blob": "x" * 32_000}}
    assert client.pipelines("/identify", under, headers=STRICT).status_code == 200


def test_batch_over_500kb(client, emu):
    item = {"type": "identify", "userId": "bb", "traits": {"blob": "x" * 30_000}}
    batch = {"batch": [item] * 18}  # ~540 KB, every item under 32 KB
    assert client.pipelines("/batch", batch, headers=STRICT).status_code == 400
    assert client.pipelines("/batch", batch).status_code == 200
    assert emu.inspect.person("bb") is None
    assert client.pipelines("/batch", {"batch": [item] * 15}, headers=STRICT).status_code == 200
    assert emu.inspect.person("bb") is not None
