"""page and screen: a person viewed a web page or an app screen."""

from __future__ import annotations

from typing import Any

from ..types import Request, StepKeys
from .people_calls import (
    ENTITY,
    PeopleCall,
    people_kind,
    person_operation,
    pipelines_call,
    track_event_fields,
)
from .registry import register


class View(PeopleCall):
    """Pipelines /v1/page or /v1/screen; Track v2 person `page` / `screen` action."""

    def __init__(self, action: str) -> None:
        self.action = action  # "page" | "screen"

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return pipelines_call(self.action, payload, keys)

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        fields = track_event_fields(payload, keys)
        if "userId" in payload:
            operation = person_operation(payload, self.action, **fields)
            if "properties" in payload:
                operation["attributes"] = payload["properties"]
            return Request("track", "POST", ENTITY, operation)
        # A v2 operation needs a person; an anonymous view is a v1 anonymous event of that type.
        body = {"anonymous_id": str(payload["anonymousId"]), "type": self.action, **fields}
        if "properties" in payload:
            body["data"] = payload["properties"]
        return Request("track", "POST", "/api/v1/events", body)


register(
    people_kind(
        "page", "Record a page view: userId or anonymousId, name, properties.", View("page")
    )
)
register(
    people_kind(
        "screen",
        "Record a mobile screen view: userId or anonymousId, name, properties.",
        View("screen"),
    )
)
