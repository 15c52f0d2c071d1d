"""Every operation of Customer.io's Track and App documents is served, with its documented auth,
and every answer is valid against the documented response schema of its status.

The documents are the copies inside the package (cio_flows/emulator/openapi/), never the shared
reference. Requests go to an emulator holding the generated demo (campaigns, newsletters,
broadcasts, messages); path parameters name resources that exist there.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cio_flows.emulator import DEMO_CREDENTIALS as C
from cio_flows.emulator import Emulator
from cio_flows.emulator.openapi import Operation, deref, errors, operations
from cio_flows.emulator.openapi.fixed import example

OPERATIONS = operations()
TRACK_AUTH = "Basic " + base64.b64encode(f"{C.site_id}:{C.track_key}".encode()).decode()
APP_AUTH = f"Bearer {C.app_key}"

# Path parameters naming things the generated demo holds.
PARAMS = {
    "identifier": "user_0001",
    "customer_id": "user_0001",
    "device_id": "device-1",
    "delivery_id": "demo00000001",
    "form_id": "signup",
    "segment_id": "1",
    "broadcast_id": "1",
    "trigger_id": "1",
    "campaign_id": "10",
    "action_id": "11",
    "language": "fr",
    "newsletter_id": "1",
    "content_id": "201",
    "test_group_id": "1",
    "message_id": "demo00000001",
    "export_id": "1",
    "import_id": "1",
    "object_type_id": "1",
    "object_id": "acme",
    "webhook_id": "1",
    "sender_id": "1",
    "snippet_name": "address",
    "transactional_id": "1",
    "collection_id": "1",
    "email_address": "someone@example.com",
    "suppression_type": "bounces",
}
# Required query parameters the schema's example does not give a usable value for.
QUERY = {"version": "2", "id_type": "id", "res": "days"}
# Bodies where a schema-generated one does not make a meaningful request.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/campaigns/{broadcast_id}/triggers"): {"ids": ["user_0001"]},
    ("POST", "/v1/send/email"): {
        "transactional_message_id": 1,
        "to": "a@example.com",
        "identifiers": {"id": "user_0001"},
    },
    ("POST", "/v1/send/push"): {"transactional_message_id": 5, "identifiers": {"id": "user_0001"}},
    ("POST", "/v1/send/sms"): {
        "transactional_message_id": 6,
        "to": "+15555550100",
        "identifiers": {"id": "user_0001"},
    },
    ("POST", "/v1/exports/deliveries"): {"newsletter_id": 1},
    ("POST", "/v1/exports/customers"): {"filters": {"and": [{"segment": {"id": 1}}]}},
    ("POST", "/v1/customers"): {"filter": {"and": [{"segment": {"id": 1}}]}},
    ("POST", "/v1/segments"): {"segment": {"name": "New one"}},
    ("POST", "/api/v1/merge_customers"): {
        "primary": {"id": "user_0001"},
        "secondary": {"id": "user_0002"},
    },
    ("POST", "/api/v2/entity"): {
        "type": "person",
        "identifiers": {"id": "x1"},
        "action": "identify",
        "attributes": {"a": 1},
    },
    ("POST", "/api/v2/batch"): {
        "batch": [{"type": "person", "identifiers": {"id": "x1"}, "action": "identify"}]
    },
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    # Exports are done at once, so their download answers (the emulator says 400 before).
    with Emulator(workspace={"demo": {"people": 30, "seed": 1}}, delivery={"export": 0}) as emu:
        yield emu


# Track's segment membership and App's segment delete work on manual segments only.
MANUAL_SEGMENT = {
    "/api/v1/segments/{segment_id}/add_customers",
    "/api/v1/segments/{segment_id}/remove_customers",
}


def _setup(emu: Emulator, op: Operation) -> dict[str, str]:
    """Resources an operation reads that the workspace does not start with; answers the path
    parameters naming them."""
    made: dict[str, str] = {}
    if "{trigger_id}" in op.path:
        response = requests.post(
            emu.url + "/v1/campaigns/1/triggers",
            json={"ids": ["user_0001"]},
            headers={"Authorization": APP_AUTH},
            timeout=30,
        )
        made["trigger_id"] = str(response.json()["id"])
    if "{object_id}" in op.path or op.path.endswith("/relationships"):
        entity = {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": "acme"},
            "action": "identify",
            "attributes": {"plan": "pro"},
            "cio_relationships": [{"identifiers": {"id": "user_0001"}}],
        }
        response = requests.post(
            emu.url + "/api/v2/entity",
            json=entity,
            headers={"Authorization": TRACK_AUTH},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    if "{snippet_name}" in op.path:
        snippet = {"name": "address", "value": "1 Main St"}
        response = requests.put(
            emu.url + "/v1/snippets", json=snippet, headers={"Authorization": APP_AUTH}, timeout=30
        )
        assert response.status_code == 200, response.text
    if "{collection_id}" in op.path:
        collection = {"name": "events", "data": [{"eventName": "launch"}]}
        response = requests.post(
            emu.url + "/v1/collections",
            json=collection,
            headers={"Authorization": APP_AUTH},
            timeout=30,
        )
        made["collection_id"] = str(response.json()["collection"]["id"])
    if "{import_id}" in op.path:
        csv_url = "data:text/csv;base64," + base64.b64encode(b"id,plan\nimp1,pro\n").decode()
        spec = {"name": "i", "data_file_url": csv_url, "type": "people", "identifier": "id"}
        response = requests.post(
            emu.url + "/v1/imports",
            json={"import": spec},
            headers={"Authorization": APP_AUTH},
            timeout=30,
        )
        made["import_id"] = str(response.json()["import"]["id"])
    if "{webhook_id}" in op.path:
        hook = {"name": "h", "endpoint": "https://example.com/h", "events": ["email_sent"]}
        response = requests.post(
            emu.url + "/v1/reporting_webhooks",
            json=hook,
            headers={"Authorization": APP_AUTH},
            timeout=30,
        )
        made["webhook_id"] = str(response.json()["id"])
    if "{export_id}" in op.path:
        response = requests.post(
            emu.url + "/v1/exports/deliveries",
            json={"newsletter_id": 1},
            headers={"Authorization": APP_AUTH},
            timeout=30,
        )
        made["export_id"] = str(response.json()["export"]["id"])
    return made


def _path(op: Operation, made: dict[str, str] | None = None) -> str:
    path = op.path
    for name, value in (made or {}).items():
        path = path.replace("{" + name + "}", value)
    if path in MANUAL_SEGMENT or (op.method, path) == ("DELETE", "/v1/segments/{segment_id}"):
        path = path.replace("{segment_id}", "8")
    if path.startswith("/v1/broadcasts/"):
        path = path.replace("{action_id}", "1001")  # broadcast 1's one action
    if path.startswith("/v1/transactional/"):
        path = path.replace("{content_id}", "1")  # a template's one content is numbered as it
    for name, value in PARAMS.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no test value for a parameter of {path}"
    return path


def _query(op: Operation) -> dict[str, str]:
    out: dict[str, str] = {}
    for param in op.spec.get("parameters", []):
        param = deref(op.document, param)
        if param.get("in") == "query" and param.get("required"):
            name = param["name"]
            value = QUERY.get(name)
            if value is None:
                value = example(op.document, param.get("schema", {}), full=False, use_examples=True)
            out[name] = str(value)
    return out


def _body(op: Operation) -> Any:
    if (op.method, op.path) in BODIES:
        return BODIES[(op.method, op.path)]
    content = deref(op.document, op.spec.get("requestBody", {})).get("content", {})
    media = content.get("application/json")
    if media is None:
        return None
    return example(op.document, media.get("schema", {}), full=False, use_examples=True)


def _request(
    emu: Emulator, op: Operation, auth: str | None, made: dict[str, str] | None = None
) -> requests.Response:
    headers = {"Authorization": auth} if auth else {}
    body = _body(op)
    return requests.request(
        op.method,
        emu.url + _path(op, made),
        params=_query(op),
        json=body if op.method != "GET" else None,
        headers=headers,
        timeout=30,
    )


def _answer(emu: Emulator, op: Operation, response: requests.Response) -> Any:
    """The body to check; the one documented deviation put back (README: deviations)."""
    body = response.json()
    if op.path == "/api/v1/accounts/region":
        # The emulator answers its own root as `url` so a client that follows it stays
        # local; the document enumerates the two production hosts.
        assert body["url"] == emu.url
        body["url"] = "https://track.customer.io"
    return body


def _check(emu: Emulator, op: Operation, response: requests.Response) -> None:
    assert response.status_code in op.statuses, (
        f"{op.method} {op.path}: {response.status_code} is not documented "
        f"({op.statuses}): {response.text[:300]}"
    )
    pointer = op.json_schema_pointer(response.status_code)
    if pointer is None:
        return
    problems = errors(op.document, pointer, _answer(emu, op, response))
    assert not problems, f"{op.method} {op.path} {response.status_code}: {problems[:5]}"


def test_both_documents_are_covered() -> None:
    assert len(OPERATIONS) == 131
    assert {op.document for op in OPERATIONS} == {"track", "app"}


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_operation_is_served_with_a_valid_answer(emulator: Emulator, op: Operation) -> None:
    emulator.reset()
    auth = (TRACK_AUTH if op.document == "track" else APP_AUTH) if op.needs_auth else None
    made = _setup(emulator, op)
    response = _request(emulator, op, auth, made)
    assert 200 <= response.status_code < 300, f"{op.method} {op.path}: {response.text[:300]}"
    _check(emulator, op, response)


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS if op.needs_auth], ids=lambda op: f"{op.method} {op.path}"
)
def test_operation_refuses_a_wrong_key(emulator: Emulator, op: Operation) -> None:
    wrong = "Bearer not-the-key" if op.document == "app" else "Basic eDp5"
    response = _request(emulator, op, wrong)
    assert response.status_code == 401, f"{op.method} {op.path}: {response.status_code}"


MISSING = [op for op in OPERATIONS if 404 in op.statuses and "{" in op.path]


@pytest.mark.parametrize("op", MISSING, ids=lambda op: f"{op.method} {op.path}")
def test_a_missing_resource_answers_a_documented_status(emulator: Emulator, op: Operation) -> None:
    """Every path parameter names nothing the workspace holds: 404 (or another documented
    error status, e.g. 400 for a malformed id), with a body valid where one is documented."""
    emulator.reset()
    path = re.sub(r"\{[^}]+\}", "999999", op.path)
    response = requests.request(
        op.method,
        emulator.url + path,
        params=_query(op),
        json=_body(op) if op.method != "GET" else None,
        headers={"Authorization": APP_AUTH},
        timeout=30,
    )
    assert response.status_code in op.statuses and response.status_code >= 400, (
        f"{op.method} {path}: {response.status_code} {response.text[:200]}"
    )
    _check(emulator, op, response)
