"""Cross-check: emulator answers against the project's wire schemas (cio_flows/schemas/wire),
written independently from the same specs by the transport side. Requests are validated too,
so the emulator is exercised with bodies the runner would send. Skipped if the files are absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import cio_flows

from .test_response_schemas import CASES as TRACK_PIPELINES_CASES

WIRE = Path(cio_flows.__file__).parent / "schemas" / "wire"
INDEX = WIRE / "index.json"

# The emulator answers its own root as the region's Track url (so clients that follow it stay
# local); the wire schema enumerates the two real hosts. Deliberate, reported to the lead.
SKIP = {"GET track /api/v1/accounts/region"}

SEND = {"transactional_message_id": "welcome", "identifiers": {"id": "user_0001"}, "to": "a@x.io"}
APP_CASES = [
    # (method, template, concrete path, params, body, status)
    (
        "POST",
        "/v1/customers",
        "/v1/customers",
        {"limit": 2},
        {"filter": {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}},
        200,
    ),
    ("POST", "/v1/customers", "/v1/customers", None, {"filter": {"and": []}}, 400),
    ("GET", "/v1/customers", "/v1/customers", {"email": "nobody@x.io"}, None, 200),
    (
        "GET",
        "/v1/customers/{identifier}/attributes",
        "/v1/customers/user_0001/attributes",
        None,
        None,
        200,
    ),
    (
        "GET",
        "/v1/customers/{identifier}/attributes",
        "/v1/customers/zz/attributes",
        None,
        None,
        404,
    ),
    (
        "POST",
        "/v1/customers/attributes",
        "/v1/customers/attributes",
        None,
        {"ids": ["user_0001", "user_0002"]},
        200,
    ),
    (
        "GET",
        "/v1/customers/{identifier}/segments",
        "/v1/customers/user_0007/segments",
        None,
        None,
        200,
    ),
    ("POST", "/v1/send/email", "/v1/send/email", None, SEND | {"message_data": {"a": 1}}, 200),
    (
        "POST",
        "/v1/send/email",
        "/v1/send/email",
        None,
        SEND | {"transactional_message_id": "x"},
        404,
    ),
    (
        "POST",
        "/v1/send/push",
        "/v1/send/push",
        None,
        {k: v for k, v in SEND.items() if k != "to"}
        | {"transactional_message_id": "order_shipped"},
        200,
    ),
    (
        "POST",
        "/v1/send/sms",
        "/v1/send/sms",
        None,
        SEND | {"transactional_message_id": "login_code", "to": "+15551234567"},
        200,
    ),
    (
        "POST",
        "/v1/send/whatsapp",
        "/v1/send/whatsapp",
        None,
        SEND | {"transactional_message_id": "appointment_reminder", "to": "+15551234567"},
        200,
    ),
    ("GET", "/v1/segments", "/v1/segments", None, None, 200),
    (
        "POST",
        "/v1/segments",
        "/v1/segments",
        None,
        {"segment": {"name": "n", "description": "d"}},
        200,
    ),
    ("GET", "/v1/segments/{segment_id}", "/v1/segments/1", None, None, 200),
    ("GET", "/v1/segments/{segment_id}", "/v1/segments/99", None, None, 404),
    (
        "GET",
        "/v1/segments/{segment_id}/customer_count",
        "/v1/segments/6/customer_count",
        None,
        None,
        200,
    ),
    (
        "GET",
        "/v1/segments/{segment_id}/membership",
        "/v1/segments/6/membership",
        {"limit": 3},
        None,
        200,
    ),
    ("DELETE", "/v1/segments/{segment_id}", "/v1/segments/8", None, None, 204),
    ("DELETE", "/v1/segments/{segment_id}", "/v1/segments/1", None, None, 400),
    ("DELETE", "/v1/segments/{segment_id}", "/v1/segments/99", None, None, 404),
    (
        "POST",
        "/v1/send/in_app",
        "/v1/send/in_app",
        None,
        {"transactional_message_id": "feature_tour", "identifiers": {"id": "user_0001"}},
        200,
    ),
    (
        "POST",
        "/v1/send/inbox_message",
        "/v1/send/inbox_message",
        None,
        {"transactional_message_id": 9, "identifiers": {"email": "a@x.io"}, "message_data": {}},
        200,
    ),
    (
        "POST",
        "/v1/send/inbox_message",
        "/v1/send/inbox_message",
        None,
        {"transactional_message_id": 1, "identifiers": {"id": "user_0001"}},
        400,
    ),
    (
        "POST",
        "/v1/campaigns/{broadcast_id}/triggers",
        "/v1/campaigns/1/triggers",
        None,
        {"ids": ["user_0001", "nobody"], "data": {"headline": "Hi"}},
        200,
    ),
    (
        "POST",
        "/v1/campaigns/{broadcast_id}/triggers",
        "/v1/campaigns/1/triggers",
        None,
        {"ids": ["user_0001"], "per_user_data": [{"id": "user_0001"}]},
        422,
    ),
    ("POST", "/v1/campaigns/{broadcast_id}/triggers", "/v1/campaigns/77/triggers", None, {}, 404),
    (
        "GET",
        "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}",
        "/v1/campaigns/1/triggers/{trigger}",
        None,
        None,
        200,
    ),
    (
        "GET",
        "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}",
        "/v1/campaigns/1/triggers/999",
        None,
        None,
        404,
    ),
    (
        "GET",
        "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors",
        "/v1/campaigns/1/triggers/{trigger}/errors",
        {"limit": 10},
        None,
        200,
    ),
    (
        "GET",
        "/v1/broadcasts/{broadcast_id}/triggers",
        "/v1/broadcasts/1/triggers",
        None,
        None,
        200,
    ),
    ("GET", "/v1/messages", "/v1/messages", {"type": "email", "limit": 5}, None, 200),
    ("GET", "/v1/messages", "/v1/messages", {"metric": "nope"}, None, 400),
    ("GET", "/v1/messages/{message_id}", "/v1/messages/{delivery}", None, None, 200),
    ("GET", "/v1/messages/{message_id}", "/v1/messages/nope", None, None, 404),
    (
        "GET",
        "/v1/customers/{identifier}/messages",
        "/v1/customers/user_0001/messages",
        None,
        None,
        200,
    ),
    (
        "GET",
        "/v1/customers/{identifier}/activities",
        "/v1/customers/user_0001/activities",
        {"limit": 100},
        None,
        200,
    ),
    (
        "GET",
        "/v1/customers/{identifier}/activities",
        "/v1/customers/nobody/activities",
        None,
        None,
        404,
    ),
    # exports, campaigns / broadcasts / newsletters and workspace activities (issue 14)
    *[
        (m, template, path, params, body, status)
        for m, template, path, params, body, status in (
            ("POST", "/v1/exports/customers", None, None, {"filters": {"segment": {"id": 1}}}, 200),
            ("POST", "/v1/exports/customers", None, None, {"attributes": []}, 400),
            ("POST", "/v1/exports/deliveries", None, None, {"campaign_id": 1}, 200),
            ("POST", "/v1/exports/deliveries", None, None, {"start": 1}, 400),
            ("GET", "/v1/exports", None, None, None, 200),
            ("GET", "/v1/exports/{export_id}", "/v1/exports/999", None, None, 404),
            (
                "GET",
                "/v1/exports/{export_id}/download",
                "/v1/exports/999/download",
                None,
                None,
                404,
            ),
            ("GET", "/v1/campaigns", None, None, None, 200),
            ("GET", "/v1/campaigns/{campaign_id}", "/v1/campaigns/10", None, None, 404),
            (
                "GET",
                "/v1/campaigns/{campaign_id}/metrics",
                "/v1/campaigns/10/metrics?version=3",
                None,
                None,
                400,
            ),
            ("GET", "/v1/broadcasts", None, None, None, 200),
            ("GET", "/v1/broadcasts/{broadcast_id}", "/v1/broadcasts/1", None, None, 200),
            (
                "GET",
                "/v1/broadcasts/{broadcast_id}/metrics",
                "/v1/broadcasts/1/metrics",
                {"steps": 3},
                None,
                200,
            ),
            ("GET", "/v1/newsletters", None, None, None, 200),
            ("GET", "/v1/newsletters/{newsletter_id}", "/v1/newsletters/1", None, None, 404),
            (
                "GET",
                "/v1/newsletters/{newsletter_id}/metrics",
                "/v1/newsletters/1/metrics",
                None,
                None,
                404,
            ),
            ("GET", "/v1/activities", None, {"limit": 5}, None, 200),
        )
        for path in [path or template]
    ],
]


def _prepare(client) -> dict[str, str]:
    """State the read cases look at: a delivered email, a processed trigger with an error."""
    client.emulator.configure(delivery={"sent": 0, "delivered": 0, "trigger": 0})
    sent = client.app("POST", "/v1/send/email", SEND).json()
    r = client.app("POST", "/v1/campaigns/1/triggers", {"ids": ["user_0001", "nobody"]})
    return {"{delivery}": sent["delivery_id"], "{trigger}": str(r.json()["id"])}


def _index() -> dict:
    return json.loads(INDEX.read_text()) if INDEX.exists() else {}


def _schema(ref: str) -> dict:
    return json.loads((WIRE.parent / ref).read_text())


def _cases():
    for method, template, path, body, headers, status in TRACK_PIPELINES_CASES:
        family = "track" if path.startswith("/api/") else "pipelines"
        if status != 401:
            yield f"{method} {family} {template}", path, None, body, headers, status
    for method, template, path, params, body, status in APP_CASES:
        yield f"{method} app {template}", path, params, body, {}, status


CASES = list(_cases())


def test_every_wire_entry_is_exercised():
    keys = {c[0] for c in CASES}
    assert set(_index()) - SKIP <= keys


CHECKED = [c for c in CASES if c[0] not in SKIP]


@pytest.mark.parametrize("case", CHECKED, ids=[f"{c[0]} {c[5]}" for c in CHECKED])
def test_answer_matches_wire_schema(client, case):
    key, path, params, body, headers, status = case
    if "{" in path:
        for placeholder, value in _prepare(client).items():
            path = path.replace(placeholder, value)
    entry = _index()[key]
    method, family, _ = key.split(" ", 2)
    if status in entry["success"] and status != 207 and body is not None and "request" in entry:
        jsonschema.validate(body, _schema(entry["request"]))
    if family == "track":
        r = client.track(method, path, body, headers=headers, params=params)
    elif family == "pipelines":
        r = client.pipelines(path.removeprefix("/v1"), body, headers=headers)
    else:
        r = client.app(method, path, body, params=params)
    assert r.status_code == status, r.text
    ref = entry["response"] if status in entry["success"] else entry["error"]
    jsonschema.validate(None if status == 204 else r.json(), _schema(ref))
    if status == 204:
        assert r.content == b""
