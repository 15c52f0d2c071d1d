"""identify, track and delete: Pipelines field names in the flow, sent to Pipelines or mapped onto Track."""

from __future__ import annotations

import re
from typing import Any

from ...errors import NeedsPipelines
from ..timestamps import to_unix
from ..types import Request, SingleRequest, StepKeys, path_id
from .registry import PEOPLE, StepKind, register

_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")

# Pipelines reserved traits that Track spells differently.
_TRACK_TRAIT_NAMES = {"createdAt": "created_at"}


def _person_path(payload: dict[str, Any]) -> str:
    return f"/api/v1/customers/{path_id(payload['userId'])}"


def with_message_id(payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
    if "messageId" in payload:
        return payload
    return {**payload, "messageId": keys.message_id}


class Identify(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        if people_family == "pipelines":
            return Request("pipelines", "POST", "/v1/identify", with_message_id(payload, keys))
        if "userId" not in payload:
            raise NeedsPipelines("identify with only anonymousId needs the Pipelines API")
        return Request("track", "PUT", _person_path(payload), track_attributes(payload))


def track_attributes(payload: dict[str, Any]) -> dict[str, Any]:
    """Pipelines traits as a Track attribute map (createdAt ISO-8601 -> created_at unix)."""
    attributes = {}
    for name, value in (payload.get("traits") or {}).items():
        if name == "createdAt" and isinstance(value, str):
            value = to_unix(value)
        attributes[_TRACK_TRAIT_NAMES.get(name, name)] = value
    return attributes


class Track(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        if people_family == "pipelines":
            return Request("pipelines", "POST", "/v1/track", with_message_id(payload, keys))
        # The same id as the batched path sends: resending either deduplicates on Customer.io.
        body: dict[str, Any] = {"name": payload["event"], "id": event_id(payload, keys)}
        if "properties" in payload:
            body["data"] = payload["properties"]
        if "timestamp" in payload:
            body["timestamp"] = to_unix(payload["timestamp"])
        if "userId" in payload:
            return Request("track", "POST", _person_path(payload) + "/events", body)
        body["anonymous_id"] = payload["anonymousId"]
        return Request("track", "POST", "/api/v1/events", body)


def event_id(payload: dict[str, Any], keys: StepKeys) -> str:
    """Track wants a ULID: an author's messageId is used only when it is one."""
    message_id = str(payload.get("messageId", ""))
    return message_id if _ULID.fullmatch(message_id) else keys.event_id


class Delete(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        if people_family == "pipelines":
            body = {
                "userId": payload["userId"],
                "event": "User Deleted",
                "messageId": keys.message_id,
            }
            return Request("pipelines", "POST", "/v1/track", body)
        return Request("track", "DELETE", _person_path(payload))


# Every people call carries a messageId / event id the server deduplicates, or is idempotent.
register(
    StepKind(
        "identify",
        "Create or update a person: userId or anonymousId, traits.",
        Identify(),
        family=PEOPLE,
    )
)
register(
    StepKind(
        "track",
        "Record an event: userId or anonymousId, event, properties.",
        Track(),
        family=PEOPLE,
    )
)
register(StepKind("delete", "Delete a person: userId.", Delete(), family=PEOPLE))
