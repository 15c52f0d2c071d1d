"""identify, track and delete: Pipelines field names in the flow, sent to Pipelines or mapped onto Track."""

from __future__ import annotations

import re
from typing import Any

from ..timestamps import to_unix
from ..types import Request, SingleRequest, StepKeys, path_id

_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")

# Pipelines reserved traits that Track spells differently.
_TRACK_TRAIT_NAMES = {"createdAt": "created_at"}


class NeedsPipelines(ValueError):
    """The payload can only be carried by the Pipelines API (e.g. an anonymousId identify)."""


def _person_path(payload: dict[str, Any]) -> str:
    return f"/api/v1/customers/{path_id(payload['userId'])}"


def _with_message_id(payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
    if "messageId" in payload:
        return payload
    return {**payload, "messageId": keys.message_id}


class Identify(SingleRequest):
    kind = "identify"

    def family(self, people_family: str) -> str:
        return people_family

    def first_request(self, payload, keys, people_family) -> Request:
        if people_family == "pipelines":
            return Request("pipelines", "POST", "/v1/identify", _with_message_id(payload, keys))
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
    kind = "track"

    def family(self, people_family: str) -> str:
        return people_family

    def first_request(self, payload, keys, people_family) -> Request:
        if people_family == "pipelines":
            return Request("pipelines", "POST", "/v1/track", _with_message_id(payload, keys))
        # The same id as the batched path sends: resending either deduplicates on Customer.io.
        body: dict[str, Any] = {"name": payload["event"], "id": _event_id(payload, keys)}
        if "properties" in payload:
            body["data"] = payload["properties"]
        if "timestamp" in payload:
            body["timestamp"] = to_unix(payload["timestamp"])
        if "userId" in payload:
            return Request("track", "POST", _person_path(payload) + "/events", body)
        body["anonymous_id"] = payload["anonymousId"]
        return Request("track", "POST", "/api/v1/events", body)


def _event_id(payload: dict[str, Any], keys: StepKeys) -> str:
    """Track wants a ULID: an author's messageId is used only when it is one."""
    message_id = str(payload.get("messageId", ""))
    return message_id if _ULID.fullmatch(message_id) else keys.event_id


class Delete(SingleRequest):
    kind = "delete"

    def family(self, people_family: str) -> str:
        return people_family

    def first_request(self, payload, keys, people_family) -> Request:
        if people_family == "pipelines":
            body = {
                "userId": payload["userId"],
                "event": "User Deleted",
                "messageId": keys.message_id,
            }
            return Request("pipelines", "POST", "/v1/track", body)
        return Request("track", "DELETE", _person_path(payload))
