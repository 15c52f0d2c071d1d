"""Track and Pipelines answers match the response schemas derived from Customer.io's specs."""

from __future__ import annotations

import jsonschema
import pytest

from .response_schemas import RESPONSES

STRICT = {"X-Strict-Mode": "1"}
PERSON = {"type": "person", "identifiers": {"id": "s1"}, "action": "identify"}

# (method, template, concrete path, body, headers, expected status)
CASES = [
    ("POST", "/v1/identify", "/v1/identify", {"userId": "s1", "traits": {"a": 1}}, {}, 200),
    ("POST", "/v1/identify", "/v1/identify", {"traits": {}}, STRICT, 400),
    (
        "POST",
        "/v1/identify",
        "/v1/identify",
        {"userId": "s1"},
        STRICT | {"Authorization": "Basic eDo="},
        401,
    ),
    ("POST", "/v1/track", "/v1/track", {"userId": "s1", "event": "e"}, {}, 200),
    ("POST", "/v1/track", "/v1/track", {"userId": "s1"}, STRICT, 400),
    ("POST", "/v1/page", "/v1/page", {"userId": "s1", "name": "p"}, {}, 200),
    ("POST", "/v1/screen", "/v1/screen", {"userId": "s1", "name": "s"}, {}, 200),
    ("POST", "/v1/group", "/v1/group", {"userId": "s1", "groupId": "g"}, {}, 200),
    ("POST", "/v1/group", "/v1/group", {"userId": "s1"}, STRICT, 400),
    ("POST", "/v1/alias", "/v1/alias", {"userId": "s1", "previousId": "s0"}, {}, 200),
    ("POST", "/v1/batch", "/v1/batch", {"batch": [{"type": "identify", "userId": "s1"}]}, {}, 200),
    ("POST", "/v1/batch", "/v1/batch", {"batch": [{"type": "nope"}]}, STRICT, 400),
    ("GET", "/api/v1/accounts/region", "/api/v1/accounts/region", None, {}, 200),
    ("PUT", "/api/v1/customers/{identifier}", "/api/v1/customers/s1", {"a": 1}, {}, 200),
    ("PUT", "/api/v1/customers/{identifier}", "/api/v1/customers/s1", {"a" * 151: 1}, {}, 400),
    ("DELETE", "/api/v1/customers/{identifier}", "/api/v1/customers/s1", None, {}, 200),
    (
        "PUT",
        "/api/v1/customers/{identifier}/devices",
        "/api/v1/customers/s1/devices",
        {"device": {"id": "d", "platform": "ios"}},
        {},
        200,
    ),
    ("PUT", "/api/v1/customers/{identifier}/devices", "/api/v1/customers/s1/devices", {}, {}, 400),
    (
        "DELETE",
        "/api/v1/customers/{identifier}/devices/{device_id}",
        "/api/v1/customers/s1/devices/d",
        None,
        {},
        200,
    ),
    (
        "POST",
        "/api/v1/customers/{identifier}/suppress",
        "/api/v1/customers/s9/suppress",
        None,
        {},
        200,
    ),
    (
        "POST",
        "/api/v1/customers/{identifier}/unsuppress",
        "/api/v1/customers/s9/unsuppress",
        None,
        {},
        200,
    ),
    (
        "POST",
        "/api/v1/customers/{identifier}/events",
        "/api/v1/customers/s1/events",
        {"name": "e"},
        {},
        200,
    ),
    ("POST", "/api/v1/customers/{identifier}/events", "/api/v1/customers/s1/events", {}, {}, 400),
    ("POST", "/api/v1/events", "/api/v1/events", {"name": "e", "anonymous_id": "a"}, {}, 200),
    ("POST", "/api/v1/events", "/api/v1/events", {"data": {}}, {}, 400),
    (
        "POST",
        "/api/v1/merge_customers",
        "/api/v1/merge_customers",
        {"primary": {"id": "user_0001"}, "secondary": {"id": "user_0002"}},
        {},
        200,
    ),
    ("POST", "/api/v1/merge_customers", "/api/v1/merge_customers", {"primary": {}}, {}, 400),
    (
        "POST",
        "/api/v1/segments/{segment_id}/add_customers",
        "/api/v1/segments/8/add_customers",
        {"ids": ["user_0001"]},
        {},
        200,
    ),
    (
        "POST",
        "/api/v1/segments/{segment_id}/add_customers",
        "/api/v1/segments/8/add_customers",
        {"ids": []},
        {},
        400,
    ),
    (
        "POST",
        "/api/v1/segments/{segment_id}/remove_customers",
        "/api/v1/segments/8/remove_customers",
        {"ids": ["user_0001"]},
        {},
        200,
    ),
    ("POST", "/api/v2/entity", "/api/v2/entity", PERSON, {}, 200),
    ("POST", "/api/v2/entity", "/api/v2/entity", {"type": "person"}, {}, 400),
    ("POST", "/api/v2/batch", "/api/v2/batch", {"batch": [PERSON]}, {}, 200),
    ("POST", "/api/v2/batch", "/api/v2/batch", {"batch": [PERSON, {"type": "person"}]}, {}, 207),
    ("POST", "/api/v2/batch", "/api/v2/batch", {"batch": "no"}, {}, 400),
]


def test_every_schema_path_is_exercised():
    assert {(m, t) for m, t, *_ in CASES} == set(RESPONSES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[2]} {c[5]}" for c in CASES])
def test_response_matches_schema(client, case):
    method, template, path, body, headers, status = case
    if path.startswith("/api/"):
        r = client.track(method, path, body, headers=headers)
    else:
        r = client.pipelines(path.removeprefix("/v1"), body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    jsonschema.validate(
        r.json(), RESPONSES[(method, template)][status], format_checker=jsonschema.FormatChecker()
    )


def test_track_401_has_no_body(client):
    r = client.track("PUT", "/api/v1/customers/x", {}, headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 401 and r.content == b""
