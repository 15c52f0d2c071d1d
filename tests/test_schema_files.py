"""The JSON Schema files shipped in cio_flows/schemas: well-formed, self-contained, indexed,
and strict enough (accept/reject examples for every step kind and the main wire bodies)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import cio_flows
from cio_flows.flow.schemas import load_schema, step_validator, validator

SCHEMAS = Path(cio_flows.__file__).parent / "schemas"
BASE_ID = "https://cio-flows.dev/schemas/"
INDEX = "wire/index.json"
ALL_FILES = sorted(p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json"))
SCHEMA_FILES = [f for f in ALL_FILES if f != INDEX]
STEP_FILES = [f for f in ALL_FILES if f.startswith("steps/")]
STEP_KINDS = sorted(Path(f).stem for f in STEP_FILES)


def _refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


# ----------------------------------------------------------------------------- the files themselves


def test_files_found():
    assert "flow.schema.json" in ALL_FILES
    assert INDEX in ALL_FILES
    assert len(STEP_FILES) >= 10
    assert any(f.startswith("wire/pipelines/") for f in ALL_FILES)
    assert any(f.startswith("wire/track/") for f in ALL_FILES)
    assert any(f.startswith("wire/app/") for f in ALL_FILES)


@pytest.mark.parametrize("name", ALL_FILES)
def test_file_is_json_with_two_space_indent(name):
    text = (SCHEMAS / name).read_text(encoding="utf-8")
    json.loads(text)
    indents = {
        len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.startswith(" ")
    }
    assert all(i % 2 == 0 for i in indents), f"{name}: indentation is not a multiple of 2"
    assert "\t" not in text


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_file_is_a_draft_2020_12_schema(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == BASE_ID + name
    assert schema.get("title"), f"{name} has no title"
    assert schema.get("description"), f"{name} has no description"


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_self_contained(name):
    schema = load_schema(name)
    defs = schema.get("$defs", {})
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), f"{name}: reference {ref!r} leaves the file"
        assert ref.removeprefix("#/$defs/") in defs, f"{name}: dangling reference {ref!r}"


def test_every_flow_step_kind_has_a_payload_schema():
    step = load_schema("flow.schema.json")["$defs"]["step"]["properties"]
    options = {"name", "save", "when", "expect", "wait_until", "loop", "expect_status"}
    options |= {"validate", "once"}
    flow_constructs = {"use", "with"}  # expanded by the loader: no payload, never sent
    kinds = sorted(set(step) - options - flow_constructs)
    assert kinds == STEP_KINDS


@pytest.mark.parametrize("name", STEP_FILES)
def test_step_properties_have_descriptions(name):
    schema = load_schema(name)
    for prop, sub in schema.get("properties", {}).items():
        assert sub.get("description"), f"{name}: property {prop!r} has no description"


# ----------------------------------------------------------------------------- wire index

ROUTE = re.compile(r"^(GET|POST|PUT|DELETE) (pipelines|track|app) /\S+$")


def _index() -> dict[str, dict[str, Any]]:
    return json.loads((SCHEMAS / INDEX).read_text(encoding="utf-8"))


def test_index_entries_point_at_existing_files():
    index = _index()
    assert index
    for route, entry in index.items():
        assert ROUTE.match(route), route
        assert set(entry) <= {"request", "response", "error", "success"}, route
        assert "response" in entry, route
        for field in ("request", "response", "error"):
            if field in entry:
                assert (SCHEMAS / entry[field]).is_file(), f"{route}: {entry[field]} is missing"
                assert entry[field].startswith("wire/"), route
        assert entry["success"] and all(200 <= s < 300 for s in entry["success"]), route


def test_index_covers_every_wire_file():
    used = {
        entry[f]
        for entry in _index().values()
        for f in ("request", "response", "error")
        if f in entry
    }
    wire = {f for f in SCHEMA_FILES if f.startswith("wire/")}
    assert wire - used == set(), "wire schema files nobody can look up"


def test_index_has_the_routes_the_runner_uses():
    index = _index()
    for route in (
        "POST pipelines /v1/identify",
        "POST pipelines /v1/track",
        "POST pipelines /v1/batch",
        "PUT track /api/v1/customers/{identifier}",
        "DELETE track /api/v1/customers/{identifier}",
        "POST track /api/v1/customers/{identifier}/events",
        "POST track /api/v2/batch",
        "POST app /v1/send/email",
        "POST app /v1/send/push",
        "POST app /v1/send/sms",
        "POST app /v1/customers",
        "GET app /v1/customers/{identifier}/attributes",
        "GET app /v1/segments",
        "GET app /v1/segments/{segment_id}/membership",
    ):
        assert route in index, route


# ------------------------------------------------------------------------ step payload examples

TS = "2024-05-01T12:00:00Z"

ACCEPT: dict[str, list[Any]] = {
    # people writes beyond identify/track/delete (wire/kinds/pages, objects, identity, devices)
    "page": [
        {"userId": "u1", "name": "Pricing", "properties": {"url": "https://x.io/p", "n": 1}},
        {"anonymousId": "a1", "name": "Home", "timestamp": "2024-01-01T00:00:00Z"},
        {"userId": 42, "name": "Home", "messageId": "m1", "context": {"ip": "203.0.113.7"}},
    ],
    "screen": [{"userId": "u1", "name": "Settings", "properties": {"tab": ["a"]}}],
    "group": [
        {"userId": "u1", "groupId": "acme"},
        {
            "anonymousId": "a1",
            "groupId": 7,
            "traits": {"name": "Acme", "object_type_id": 2, "relationshipAttributes": {}},
        },
        {"userId": "u1", "groupId": "acme", "traits": {"object_type_id": "3", "seats": [1]}},
    ],
    "delete_object": [{"groupId": "acme"}, {"groupId": 7, "objectTypeId": "2"}],
    "delete_relationship": [{"userId": "u1", "groupId": "acme", "objectTypeId": 1}],
    "alias": [{"userId": "u1", "previousId": "u2"}, {"userId": 1, "previousId": 2}],
    "add_device": [
        {"userId": "u1", "device": {"token": "t", "type": "ios"}},
        {"userId": "u1", "device": {"token": "t", "type": "android", "attributes": {"v": "2"}}},
    ],
    "delete_device": [
        {"userId": "u1", "device": {"token": "t"}},
        {"userId": "u1", "device": {"token": "t", "type": "ios"}},
    ],
    "suppress": [{"userId": "u1"}, {"userId": "a+b@x.com"}],
    "unsuppress": [{"userId": "u1"}],
    "identify": [
        {
            "userId": "demo_1",
            "traits": {"email": "jane@example.com", "plan": "free", "createdAt": TS},
        },
        {"anonymousId": "anon-1"},
        {
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {
                "unsubscribed": False,
                "nested": {"any": ["json", 1, None]},
                "cio_subscription_preferences": {
                    "topics": {"topic_1": True},
                    "channels": {"email": False},
                },
            },
            "timestamp": "2024-05-01T12:00:00.123+02:00",
            "messageId": "0b6f9c52-6c5b-4a5e-9f0e-2f4c2a1f5b3d",
            "context": {"ip": "203.0.113.9", "locale": "en-US", "custom": 1},
            "integrations": {"All": True, "Salesforce": False},
        },
    ],
    "track": [
        {
            "userId": "demo_1",
            "event": "plan_upgraded",
            "properties": {"from_plan": "free", "mrr": 49},
        },
        {"anonymousId": "a1", "event": "x" * 100, "timestamp": TS, "messageId": "m-1"},
    ],
    "delete": [{"userId": "demo_1"}, {"userId": 42}, {"userId": "cio_03000001"}],
    "send_email": [
        {
            "transactional_message_id": "welcome",
            "to": "jane@example.com",
            "identifiers": {"id": "demo_1"},
            "message_data": {"first_name": "Jane"},
        },
        {
            "transactional_message_id": 12,
            "to": '"Jane" <jane@example.com>',
            "identifiers": {"email": "jane@example.com"},
            "from": "hi@example.com",
            "subject": "Hello",
            "body": "<p>Hi</p>",
            "bcc": "audit@example.com",
            "headers": {"X-Tag": "welcome"},
            "attachments": {"receipt.txt": "aGVsbG8gd29ybGQ="},
            "send_at": 1714564800,
            "send_to_unsubscribed": False,
            "tracked": True,
            "disable_message_retention": True,
            "queue_draft": False,
            "language": "fr",
        },
    ],
    "send_push": [
        {"transactional_message_id": 3, "identifiers": {"cio_id": "03000001"}},
        {
            "transactional_message_id": "order_shipped",
            "identifiers": {"id": "demo_1"},
            "to": "last_used",
            "title": "Shipped",
            "message": "Your order is on its way",
            "sound": "none",
            "custom_data": {"order": "42"},
            "custom_device": {
                "token": "tok",
                "platform": "ios",
                "attributes": {"app_version": "1.2"},
            },
        },
    ],
    "send_sms": [
        {
            "transactional_message_id": "otp",
            "identifiers": {"email": "a@example.com"},
            "to": "+15551234567",
        },
    ],
    "send_whatsapp": [
        {
            "transactional_message_id": "order_shipped",
            "identifiers": {"id": "u1"},
            "to": "+15551234567",
            "message_data": {"order": "42"},
        },
        {"transactional_message_id": 7, "identifiers": {"cio_id": "abc"}},
    ],
    "search": [
        {
            "filter": {
                "and": [
                    {"attribute": {"field": "email", "operator": "eq", "value": "a@example.com"}}
                ]
            }
        },
        {
            "filter": {
                "or": [
                    {"not": {"segment": {"id": 3}}},
                    {"attribute": {"field": "plan", "operator": "exists"}},
                    {
                        "and": [
                            {
                                "attribute": {
                                    "field": "unsubscribed",
                                    "operator": "eq",
                                    "value": True,
                                }
                            }
                        ]
                    },
                ]
            },
            "limit": 1000,
        },
        {"filter": {"segment": {"id": 7}}, "limit": 1},
    ],
    "get_person": [{"id": "demo_1"}, {"id": "a@example.com", "id_type": "email"}, {"id": 5}],
    "list_segments": [None, {}],
    "segment_members": [{"segment_id": 7}, {"segment_id": 7, "limit": 30000}],
    # App-side kinds (wire/kinds/segments, broadcasts, messages, raw; sends in app)
    "add_to_segment": [
        {"segment_id": 7, "ids": ["u1", 2]},
        {"segment_id": 7, "ids": ["a@x.io"], "id_type": "email"},
    ],
    "remove_from_segment": [{"segment_id": 7, "ids": ["u1"], "id_type": "cio_id"}],
    "create_segment": [{"name": "Beta"}, {"name": "Beta", "description": "early access"}],
    "delete_segment": [{"segment_id": 7}],
    "person_segments": [{"id": "u1"}, {"id": 5, "id_type": "cio_id"}],
    "send_in_app": [
        {"transactional_message_id": 8, "identifiers": {"id": "u"}, "message_data": {"a": 1}},
        {"transactional_message_id": "promo", "identifiers": {"cio_id": "c"}, "queue_draft": True},
    ],
    "send_inbox": [
        {"transactional_message_id": 9, "identifiers": {"email": "a@x.io"}, "to": "a@x.io"},
    ],
    "trigger_broadcast": [
        {"broadcast_id": 1},
        {"broadcast_id": 1, "ids": ["u1"], "data": {"a": 1}, "id_ignore_missing": True},
        {"broadcast_id": 1, "per_user_data": [{"email": "a@x.io", "data": {"n": 1}}]},
        {"broadcast_id": 1, "recipients": {"segment": {"id": 3}}},
    ],
    "broadcast_status": [{"broadcast_id": 1, "trigger_id": 4}],
    "broadcast_errors": [{"broadcast_id": 1, "trigger_id": 4, "limit": 10, "page_size": 5}],
    "get_message": [{"id": "dlv_1"}],
    "list_messages": [
        None,
        {"type": "email", "metric": "bounced", "broadcast_id": 1, "start_ts": TS, "end_ts": 1},
        {"campaign_id": 3, "drafts": True, "limit": 5, "page_size": 1000},
    ],
    "person_messages": [{"id": "u1"}, {"id": "a@x.io", "id_type": "email", "start_ts": 0}],
    "person_activities": [{"id": "u1", "type": "event", "name": "signed_up", "page_size": 100}],
    "request": [
        {"api": "app", "method": "GET", "path": "/v1/segments", "query": {"a": [1, True]}},
        {"api": "track", "method": "PUT", "path": "/api/v1/customers/u", "body": {"a": 1}},
        {"api": "pipelines", "method": "POST", "path": "/v1/track", "idempotent": True},
    ],
}

REJECT: dict[str, list[Any]] = {
    "page": [
        {"userId": "u1"},  # no name: Track requires one
        {"name": "Home"},  # neither userId nor anonymousId
        {"userId": "u1", "name": ""},
        {"userId": "u1", "name": "Home", "properties": {"url": 5}},
        {"userId": "u1", "name": "Home", "timestamp": "yesterday"},
        {"userId": "u1", "name": "Home", "event": "x"},
    ],
    "screen": [{"name": "Settings"}, {"userId": "u1", "name": "S", "properties": []}],
    "group": [
        {"userId": "u1"},
        {"groupId": "acme"},
        {"userId": "u1", "groupId": ""},
        {"userId": "u1", "groupId": "acme", "traits": {"object_type_id": "one"}},
        {"userId": "u1", "groupId": "acme", "traits": {"object_type_id": 0}},
        {"userId": "u1", "groupId": "acme", "traits": {"relationshipAttributes": "admin"}},
    ],
    "delete_object": [
        {},
        {"groupId": "acme", "objectTypeId": "x"},
        {"groupId": "a", "userId": "u"},
    ],
    "delete_relationship": [{"groupId": "acme"}, {"userId": "u1"}],
    "alias": [{"userId": "u1"}, {"previousId": "u2"}, {"userId": "", "previousId": "u2"}],
    "add_device": [
        {"userId": "u1", "device": {"token": "t"}},  # no type
        {"userId": "u1", "device": {"token": "t", "type": "windows"}},
        {"userId": "u1", "device": {"token": "t", "type": "ios", "attributes": {"v": 2}}},
        {"userId": "u1", "device": {"id": "t", "type": "ios"}},
        {"device": {"token": "t", "type": "ios"}},
    ],
    "delete_device": [{"userId": "u1"}, {"userId": "u1", "device": {}}, {"device": {"token": "t"}}],
    "suppress": [{}, {"userId": ""}, {"userId": "u1", "email": "x"}],
    "unsuppress": [{}, {"userId": True}],
    "identify": [
        {},
        {"traits": {"email": "jane@example.com"}},  # neither userId nor anonymousId
        {"userId": ""},
        {"anonymousId": ""},
        {"userId": 42},  # the Pipelines spec types userId as a string
        {"userId": "u", "bogus": 1},
        {"userId": "u", "type": "identify"},
        {"userId": "u", "traits": {"createdAt": 1714564800}},
        {"userId": "u", "traits": {"unsubscribed": "yes"}},
        {"userId": "u", "traits": {"cio_subscription_preferences": {"topics": {"news": True}}}},
        {"userId": "u", "timestamp": "yesterday"},
        {"userId": "u", "timestamp": "2024-05-01T12:00:00"},  # no zone
        {"userId": "u", "integrations": {"All": "yes"}},
        {"userId": "u", "traits": []},
        [],
    ],
    "track": [
        {"userId": "u"},
        {"event": "signed_up"},
        {"userId": "u", "event": ""},
        {"userId": "u", "event": "x" * 101},
        {"userId": "u", "event": "e", "name": "e"},
        {"userId": "u", "event": "e", "properties": []},
        {"userId": "u", "event": 5},
    ],
    "delete": [
        {},
        {"userId": ""},
        {"userId": None},
        {"userId": 1.5},
        {"userId": "u", "email": "a@b.c"},
    ],
    "send_email": [
        {
            "transactional_message_id": "w",
            "to": "a@b.c",
            "identifiers": {"id": "u", "email": "a@b.c"},
        },
        {"transactional_message_id": "w", "to": "a@b.c", "identifiers": {}},
        {"transactional_message_id": "w", "to": "a@b.c", "identifiers": {"phone": "+15551234567"}},
        {"transactional_message_id": "w", "to": "a@b.c", "identifiers": {"id": ""}},
        {"to": "a@b.c", "identifiers": {"id": "u"}},
        {"transactional_message_id": "w", "identifiers": {"id": "u"}},
        {"transactional_message_id": "w", "to": "a@b.c"},
        {"transactional_message_id": 1.5, "to": "a@b.c", "identifiers": {"id": "u"}},
        {"transactional_message_id": "", "to": "a@b.c", "identifiers": {"id": "u"}},
        {
            "transactional_message_id": "w",
            "to": "a@b.c",
            "identifiers": {"id": "u"},
            "title": "push only",
        },
        {
            "transactional_message_id": "w",
            "to": "a@b.c",
            "identifiers": {"id": "u"},
            "send_at": "tomorrow",
        },
        {
            "transactional_message_id": "w",
            "to": "a@b.c",
            "identifiers": {"id": "u"},
            "attachments": {"noext": "aGk="},
        },
        {
            "transactional_message_id": "w",
            "to": "a@b.c",
            "identifiers": {"id": "u"},
            "headers": {"X-N": 1},
        },
    ],
    "send_push": [
        {"transactional_message_id": 3},
        {"transactional_message_id": 3, "identifiers": {"id": "u"}, "sound": "loud"},
        {
            "transactional_message_id": 3,
            "identifiers": {"id": "u"},
            "custom_device": {"token": "t"},
        },
        {"transactional_message_id": 3, "identifiers": {"id": "u"}, "subject": "email only"},
    ],
    "send_sms": [
        {"transactional_message_id": "otp", "identifiers": {"id": "u"}},
        {"transactional_message_id": "otp", "identifiers": {"id": "u"}, "to": "+1555", "body": "x"},
    ],
    "send_whatsapp": [
        {"identifiers": {"id": "u"}},
        {"transactional_message_id": 7},
        {"transactional_message_id": 7, "identifiers": {"id": "u"}, "subject": "email only"},
    ],
    "search": [
        {},
        {"filter": {}},
        {"filter": {"and": [], "or": []}},
        {  # two top-level keys
            "filter": {
                "and": [{"segment": {"id": 1}}],
                "or": [{"segment": {"id": 2}}],
            }
        },
        {"filter": {"and": []}},
        {"filter": {"attribute": {"field": "email", "operator": "eq"}}},  # eq without value
        {"filter": {"attribute": {"field": "email", "operator": "gt", "value": 1}}},
        {"filter": {"attribute": {"field": "email", "operator": "eq", "value": {"a": 1}}}},
        {"filter": {"segment": {"id": "3"}}},
        {"filter": {"segment": {}}},
        {
            "filter": {
                "not": {"segment": {"id": 1}, "attribute": {"field": "a", "operator": "exists"}}
            }
        },
        {
            "filter": {"and": [{"attribute": {"field": "a", "operator": "eq"}}]}
        },  # nested eq without value
        {"filter": {"segment": {"id": 1}}, "limit": 0},
        {"filter": {"segment": {"id": 1}}, "limit": 1001},
        {"filter": {"segment": {"id": 1}}, "start": "abc"},
    ],
    "get_person": [{}, {"id": ""}, {"id": "u", "id_type": "phone"}, {"id": "u", "extra": 1}],
    "list_segments": [{"limit": 5}, [], "all"],
    "segment_members": [
        {},
        {"segment_id": 0},
        {"segment_id": "7"},
        {"segment_id": 7, "limit": 30001},
        {"segment_id": 7, "limit": 0},
        {"segment_id": 7, "start": "x"},
    ],
    "add_to_segment": [
        {"segment_id": 7},
        {"segment_id": 7, "ids": []},
        {"segment_id": 7, "ids": [""]},
        {"segment_id": 7, "ids": ["u"], "id_type": "phone"},
    ],
    "remove_from_segment": [{"ids": ["u"]}, {"segment_id": "7", "ids": ["u"]}],
    "create_segment": [{}, {"name": ""}, {"name": "B", "type": "dynamic"}],
    "delete_segment": [{}, {"segment_id": 0}],
    "person_segments": [{}, {"id": "u", "id_type": "phone"}],
    "send_in_app": [
        {"transactional_message_id": 8},
        {"transactional_message_id": 8, "identifiers": {"id": "u"}, "to": "x"},
        {"transactional_message_id": 8, "identifiers": {"id": "u"}, "send_to_unsubscribed": True},
    ],
    "send_inbox": [{"identifiers": {"id": "u"}}, {"transactional_message_id": 9}],
    "trigger_broadcast": [
        {"ids": ["u"]},
        {"broadcast_id": 1, "ids": ["u"], "emails": ["a@x.io"]},  # two audience selectors
        {"broadcast_id": 1, "ids": []},
        {"broadcast_id": 1, "data": "x"},
        {"broadcast_id": 1, "recipients": {"segment": {"id": 1}, "not": {}}},
        {"broadcast_id": 1, "per_user_data": [{"data": {}}]},
    ],
    "broadcast_status": [{"broadcast_id": 1}, {"trigger_id": 4}],
    "broadcast_errors": [{"broadcast_id": 1, "trigger_id": 4, "page_size": 1001}],
    "get_message": [{}, {"id": ""}],
    "list_messages": [
        {"type": "sms"},
        {"metric": "read"},
        {"start_ts": "yesterday"},
        {"limit": 0},
        {"page_size": 1001},
    ],
    "person_messages": [{}, {"id": "u", "page_size": 1001}],
    "person_activities": [{"id": "u", "page_size": 101}, {"id": "u", "type": ""}],
    "request": [
        {"api": "app", "method": "GET"},
        {"api": "cdp", "method": "GET", "path": "/v1/x"},
        {"api": "app", "method": "HEAD", "path": "/v1/x"},
        {"api": "app", "method": "GET", "path": "v1/x"},
        {"api": "app", "method": "GET", "path": "/v1/x?a=1"},
        {"api": "app", "method": "GET", "path": "/v1/x", "query": {"a": {"b": 1}}},
        {"api": "app", "method": "POST", "path": "/v1/x", "idempotent": "yes"},
    ],
}


def _cases(table):
    return [
        pytest.param(kind, payload, id=f"{kind}-{i}")
        for kind in table
        for i, payload in enumerate(table[kind])
    ]


def test_examples_cover_every_step_kind():
    assert sorted(ACCEPT) == STEP_KINDS
    assert sorted(REJECT) == STEP_KINDS


@pytest.mark.parametrize(("kind", "payload"), _cases(ACCEPT))
def test_step_accepts(kind, payload):
    errors = [e.message for e in step_validator(kind).iter_errors(payload)]
    assert errors == []


@pytest.mark.parametrize(("kind", "payload"), _cases(REJECT))
def test_step_rejects(kind, payload):
    assert not step_validator(kind).is_valid(payload)


@pytest.mark.parametrize("kind", ["send_email", "send_push", "send_sms", "send_whatsapp"])
def test_valid_send_steps_are_valid_wire_requests(kind):
    wire = validator(f"wire/app/{kind}.request.json")
    for payload in ACCEPT[kind]:
        assert [e.message for e in wire.iter_errors(payload)] == []


def test_valid_search_steps_are_valid_wire_requests():
    wire = validator("wire/app/customers_search.request.json")
    for payload in ACCEPT["search"]:
        assert [e.message for e in wire.iter_errors({"filter": payload["filter"]})] == []


# ----------------------------------------------------------------------------- wire examples

OFFICIAL_BATCH = {  # the shape customerio-cdp-analytics posts to /v1/batch
    "batch": [
        {
            "integrations": {},
            "anonymousId": None,
            "timestamp": "2024-05-01T12:00:00.000+00:00",
            "context": {"library": {"name": "analytics-python", "version": "1.1.0"}},
            "type": "identify",
            "userId": "u1",
            "traits": {"email": "a@example.com", "score": 1.5},
            "messageId": "0b6f9c52-6c5b-4a5e-9f0e-2f4c2a1f5b3d",
        },
        {
            "type": "track",
            "userId": "u1",
            "anonymousId": None,
            "event": "e",
            "properties": {},
            "integrations": {},
        },
        {"type": "page", "userId": "u1", "name": None, "category": None, "properties": {}},
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"object_type_id": "1"}},
        {"type": "alias", "previousId": "anon", "userId": "u1"},
    ],
    "sentAt": "2024-05-01T12:00:01.000000+00:00",
}

WIRE_ACCEPT = [
    ("wire/pipelines/batch.request.json", OFFICIAL_BATCH),
    (
        "wire/pipelines/identify.request.json",
        {"userId": "u", "anonymousId": "a", "traits": {"x": [1]}},
    ),
    ("wire/pipelines/track.request.json", {"userId": "u", "event": "User Deleted"}),
    ("wire/pipelines/track.request.json", {"groupId": "g", "event": "e"}),
    (
        "wire/pipelines/track.request.json",
        {
            "userId": "u",
            "event": "Device Created or Updated",
            "context": {"device": {"token": "t", "type": "ios"}},
        },
    ),
    (
        "wire/pipelines/track.request.json",
        {"event": "Report Delivery Event", "properties": {"deliveryId": "d"}},
    ),
    ("wire/pipelines/alias.request.json", {"previousId": "a", "userId": "u"}),
    ("wire/pipelines/identify.response.json", {}),
    ("wire/pipelines/error.response.json", {"meta": {"errors": ["bad"]}}),
    (
        "wire/track/customers_put.request.json",
        {"email": "a@example.com", "created_at": 1714564800, "plan": "pro"},
    ),
    (
        "wire/track/customers_put.request.json",
        {"_update": True, "cio_subscription_preferences.topics.topic_1": True},
    ),
    (
        "wire/track/events.request.json",
        {"name": "e", "data": {"a": {"b": 1}}, "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
    ),
    ("wire/track/events.request.json", {"name": "/home", "type": "page", "timestamp": 1714564800}),
    ("wire/track/anonymous_events.request.json", {"name": "e", "anonymous_id": "c1"}),
    (
        "wire/track/devices_put.request.json",
        {"device": {"id": "tok", "platform": "android", "last_used": 1}},
    ),
    (
        "wire/track/merge_customers.request.json",
        {"primary": {"id": "a"}, "secondary": {"email": "b@example.com"}},
    ),
    ("wire/track/segment_membership.request.json", {"ids": ["a", "b"]}),
    (
        "wire/track/batch.request.json",
        {
            "batch": [
                {
                    "type": "person",
                    "identifiers": {"id": "u"},
                    "action": "identify",
                    "attributes": {"a": 1},
                },
                {
                    "type": "person",
                    "identifiers": {"phone": "+15551234567"},
                    "action": "event",
                    "name": "e",
                },
                {
                    "type": "person",
                    "action": "merge",
                    "primary": {"id": "a"},
                    "secondary": {"cio_id": "b"},
                },
                {"type": "person", "identifiers": {"id": "u"}, "action": "delete"},
                {
                    "type": "object",
                    "identifiers": {"object_type_id": "1", "object_id": "acme"},
                    "action": "identify",
                    "attributes": {"name": "Acme"},
                },
            ]
        },
    ),
    (
        "wire/track/entity.request.json",
        {"type": "person", "identifiers": {"email": "a@b.c"}, "action": "suppress"},
    ),
    ("wire/track/batch.response.json", {}),
    (
        "wire/track/batch.response.json",
        {"errors": [{"batch_index": 1, "reason": "r", "field": "f", "message": "m"}]},
    ),
    ("wire/track/customers_put.response.json", {}),
    (
        "wire/track/region.response.json",
        {"url": "https://track-eu.customer.io", "region": "eu", "environment_id": 3},
    ),
    ("wire/track/error.response.json", {"meta": {"error": "multiple identifiers"}}),
    (
        "wire/app/customers_search.response.json",
        {
            "identifiers": [{"id": "u", "email": None, "cio_id": "03000001"}],
            "ids": ["u"],
            "next": "",
        },
    ),
    ("wire/app/customers_search.response.json", {"identifiers": None, "ids": None}),
    (
        "wire/app/segment_membership.response.json",
        {"identifiers": [], "ids": [""], "next": "MTIz", "extra": 1},
    ),
    (
        "wire/app/customer_attributes.response.json",
        {
            "customer": {
                "id": "u",
                "identifiers": {"id": "u", "email": None, "cio_id": "03000001"},
                "attributes": {
                    "id": "u",
                    "cio_id": "03000001",
                    "plan": "pro",
                    "created_at": "1714564800",
                },
                "timestamps": {"plan": 1714564800},
                "unsubscribed": False,
            }
        },
    ),
    (
        "wire/app/segments_list.response.json",
        {
            "segments": [
                {
                    "id": 7,
                    "deduplicate_id": "7:1714564800",
                    "name": "Pro",
                    "description": "",
                    "state": "finished",
                    "progress": None,
                    "type": "dynamic",
                    "tags": None,
                    "created_at": 1714564800,
                    "updated_at": 1714564800,
                }
            ]
        },
    ),
    ("wire/app/segment_count.response.json", {"segment_id": 7, "count": 0}),
    (
        "wire/app/send_email.response.json",
        {"delivery_id": "RPILAgABcRhIBqSp7kiPekGBIeVh", "queued_at": 1714564800},
    ),
    (
        "wire/app/send_email.request.json",
        {"to": "a@b.c", "identifiers": {"id": "u"}, "headers": '[{"name": "X"}]'},
    ),
    ("wire/app/error.response.json", {"errors": [{"detail": "slow down", "status": "429"}]}),
    ("wire/app/send_error.response.json", {"meta": {"error": "no template"}}),
]

WIRE_REJECT = [
    ("wire/pipelines/batch.request.json", {"batch": [{"userId": "u", "event": "e"}]}),  # no type
    (
        "wire/pipelines/batch.request.json",
        {"batch": [{"type": "track", "userId": "u"}]},
    ),  # no event
    (
        "wire/pipelines/batch.request.json",
        {"batch": [{"type": "identify", "userId": None, "anonymousId": None}]},
    ),
    ("wire/pipelines/batch.request.json", {"batch": [{"type": "delete", "userId": "u"}]}),
    ("wire/pipelines/identify.request.json", {"traits": {"email": "a@b.c"}}),
    ("wire/pipelines/track.request.json", {"anonymousId": "a", "event": "User Deleted"}),
    ("wire/pipelines/track.request.json", {"userId": "u", "event": "Device Created or Updated"}),
    ("wire/pipelines/group.request.json", {"userId": "u"}),
    ("wire/pipelines/alias.request.json", {"userId": "u"}),
    ("wire/pipelines/identify.response.json", {"ok": True}),
    ("wire/track/customers_put.request.json", {"created_at": "2024-05-01"}),
    (
        "wire/track/customers_put.request.json",
        {"score": 1.5},
    ),  # the spec allows string, integer, boolean only
    ("wire/track/events.request.json", {"data": {}}),
    ("wire/track/events.request.json", {"name": "e", "id": "0b6f9c52-6c5b-4a5e-9f0e-2f4c2a1f5b3d"}),
    ("wire/track/events.request.json", {"name": "e", "timestamp": "2024-05-01T12:00:00Z"}),
    ("wire/track/devices_put.request.json", {"device": {"id": "tok"}}),
    (
        "wire/track/merge_customers.request.json",
        {"primary": {"id": "a", "email": "b"}, "secondary": {"id": "c"}},
    ),
    ("wire/track/segment_membership.request.json", {"ids": []}),
    (
        "wire/track/batch.request.json",
        {"batch": [{"type": "person", "identifiers": {"id": "u"}, "action": "event"}]},
    ),
    (
        "wire/track/batch.request.json",
        {
            "batch": [
                {"type": "person", "identifiers": {"id": "u", "email": "e"}, "action": "delete"}
            ]
        },
    ),
    ("wire/track/batch.request.json", {"batch": [{"type": "person", "action": "delete"}]}),
    ("wire/track/entity.request.json", {"type": "company", "action": "identify"}),
    ("wire/track/batch.response.json", {"errors": "bad"}),
    (
        "wire/track/region.response.json",
        {"url": "https://track.customer.io", "region": "apac", "environment_id": 1},
    ),
    (
        "wire/app/customers_search.request.json",
        {"filter": {"attribute": {"field": "a", "operator": "eq"}}},
    ),
    ("wire/app/customers_search.response.json", {"next": ""}),
    ("wire/app/send_sms.request.json", {"transactional_message_id": 1, "identifiers": {"id": "u"}}),
    ("wire/app/send_push.request.json", {"identifiers": {"id": "u"}}),
    ("wire/app/send_email.response.json", {"delivery_id": "d"}),
    ("wire/app/segment_count.response.json", {"count": 3}),
]


@pytest.mark.parametrize(
    ("name", "body"), WIRE_ACCEPT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(WIRE_ACCEPT)]
)
def test_wire_accepts(name, body):
    assert [e.message for e in validator(name).iter_errors(body)] == []


@pytest.mark.parametrize(
    ("name", "body"), WIRE_REJECT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(WIRE_REJECT)]
)
def test_wire_rejects(name, body):
    assert not validator(name).is_valid(body)
