"""What the people writes beyond identify/track/delete share: one payload, two APIs, and a batch entry.

A `PeopleCall` builds its Pipelines request and its Track request from the same payload (Pipelines
field names); `people_kind` registers it with the PEOPLE family and a batch entry derived from
those requests, so a kind states its mapping once and batching follows from it.
"""

from __future__ import annotations

from typing import Any

from ...errors import NeedsPipelines
from ..timestamps import to_unix
from ..types import Request, SingleRequest, StepKeys, path_id
from .people import event_id, with_message_id
from .registry import PEOPLE, StepKind

ENTITY = "/api/v2/entity"
DEFAULT_OBJECT_TYPE = "1"  # Customer.io's default object type, as Pipelines defaults it


class PeopleCall(SingleRequest):
    """A people write carried by Pipelines when its key is set, else by Track."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        raise NotImplementedError

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        raise NotImplementedError

    def track_operation(self, payload: dict[str, Any], keys: StepKeys) -> dict[str, Any] | None:
        """The Track v2 operation for /api/v2/batch; by default the /api/v2/entity body."""
        request = self.track(payload, keys)
        return request.body if request.path == ENTITY else None

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        if people_family == "pipelines":
            return self.pipelines(payload, keys)
        return self.track(payload, keys)

    def batch_item(
        self, payload: dict[str, Any], keys: StepKeys, family: str
    ) -> dict[str, Any] | None:
        """The step's entry in a /v1/batch (typed like its call) or /api/v2/batch call."""
        if family == "pipelines":
            request = self.pipelines(payload, keys)
            return {"type": request.path.removeprefix("/v1/"), **request.body}
        try:
            return self.track_operation(payload, keys)
        except NeedsPipelines:  # sent alone, where the error names the step
            return None


def people_kind(name: str, description: str, call: PeopleCall) -> StepKind:
    """A PEOPLE kind whose requests can share batch calls.

    Repeatable: every request carries a messageId or Track event id the server deduplicates, or
    is idempotent (PUT, DELETE, object identify/delete, relationship changes, suppression).
    """
    return StepKind(name, description, call, family=PEOPLE, batch=call.batch_item)


# -- pieces the mappings share ----------------------------------------------------------------


def text(value: Any) -> str:
    """Ids may be written as integers; both APIs want strings."""
    return str(value)


def person_path(user_id: Any, suffix: str = "") -> str:
    return f"/api/v1/customers/{path_id(user_id)}{suffix}"


def person_operation(payload: dict[str, Any], action: str, **fields: Any) -> dict[str, Any]:
    """A Track v2 person operation on payload['userId']."""
    return {
        "type": "person",
        "identifiers": {"id": text(payload["userId"])},
        "action": action,
        **fields,
    }


def object_identifiers(group_id: Any, object_type_id: Any) -> dict[str, str]:
    return {"object_type_id": text(object_type_id), "object_id": text(group_id)}


def semantic_event(payload: dict[str, Any], keys: StepKeys, event: str, **fields: Any) -> Request:
    """A Pipelines reserved event (`User Suppressed`, `Device Deleted`, ...) on /v1/track."""
    body: dict[str, Any] = {}
    if "userId" in payload:
        body["userId"] = text(payload["userId"])
    body.update(event=event, **fields, messageId=keys.message_id)
    return Request("pipelines", "POST", "/v1/track", body)


# Payload fields that hold ids: a flow may write them as integers, Pipelines wants strings.
ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")


def pipelines_call(call: str, payload: dict[str, Any], keys: StepKeys) -> Request:
    """POST /v1/<call> with the payload as written (ids as strings) and a messageId."""
    body = {**payload, **{name: text(payload[name]) for name in ID_FIELDS if name in payload}}
    return Request("pipelines", "POST", f"/v1/{call}", with_message_id(body, keys))


def track_event_fields(payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
    """Track's spelling of a page/screen view: name, data, dedupe id, unix timestamp."""
    fields: dict[str, Any] = {"name": payload["name"], "id": event_id(payload, keys)}
    if "timestamp" in payload:
        fields["timestamp"] = to_unix(payload["timestamp"])
    return fields
