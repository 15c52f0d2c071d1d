"""alias (merge two profiles), suppress and unsuppress."""

from __future__ import annotations

from typing import Any

from ..types import Request, StepKeys
from .people_calls import (
    PeopleCall,
    people_kind,
    person_operation,
    person_path,
    pipelines_call,
    semantic_event,
    text,
)
from .registry import register


class Alias(PeopleCall):
    """Pipelines /v1/alias; Track POST /api/v1/merge_customers (v2 batch: person merge).

    previousId is merged into userId, which remains. Treated as repeatable: merging again once
    the secondary is gone changes nothing (Customer.io ignores or refuses a missing secondary),
    so resending after a lost answer cannot merge twice; the Pipelines call carries a messageId.
    """

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return pipelines_call("alias", payload, keys)

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return Request("track", "POST", "/api/v1/merge_customers", self._people(payload))

    def track_operation(self, payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
        return {"type": "person", "action": "merge", **self._people(payload)}

    @staticmethod
    def _people(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "primary": {"id": text(payload["userId"])},
            "secondary": {"id": text(payload["previousId"])},
        }


_SUPPRESSION_EVENTS = {"suppress": "User Suppressed", "unsuppress": "User Unsuppressed"}


class Suppression(PeopleCall):
    """Pipelines `User Suppressed` / `User Unsuppressed`; Track POST .../suppress|unsuppress."""

    def __init__(self, action: str) -> None:
        self.action = action  # "suppress" | "unsuppress"

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return semantic_event(payload, keys, _SUPPRESSION_EVENTS[self.action])

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return Request("track", "POST", person_path(payload["userId"], f"/{self.action}"))

    def track_operation(self, payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
        return person_operation(payload, self.action)


register(
    people_kind(
        "alias",
        "Merge a profile into another: userId (the one kept), previousId (merged in, deleted).",
        Alias(),
    )
)
register(
    people_kind(
        "suppress",
        "Delete a person and block their identifiers from coming back: userId.",
        Suppression("suppress"),
    )
)
register(
    people_kind(
        "unsuppress",
        "Let a suppressed identifier be added and messaged again: userId.",
        Suppression("unsuppress"),
    )
)
