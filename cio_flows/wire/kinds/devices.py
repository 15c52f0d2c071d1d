"""add_device and delete_device: a person's mobile devices (push tokens)."""

from __future__ import annotations

from typing import Any

from ..types import Request, StepKeys, path_id
from .people_calls import PeopleCall, people_kind, person_operation, person_path, semantic_event
from .registry import register


class AddDevice(PeopleCall):
    """Pipelines `Device Created or Updated`; Track PUT /api/v1/customers/{id}/devices."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        device = payload["device"]
        fields: dict[str, Any] = {
            "context": {"device": {"token": device["token"], "type": device["type"]}}
        }
        if device.get("attributes"):
            fields["properties"] = device["attributes"]
        return semantic_event(payload, keys, "Device Created or Updated", **fields)

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        device = {"id": payload["device"]["token"], **self._details(payload)}
        return Request(
            "track", "PUT", person_path(payload["userId"], "/devices"), {"device": device}
        )

    def track_operation(self, payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
        device = {"token": payload["device"]["token"], **self._details(payload)}
        return person_operation(payload, "add_device", device=device)

    @staticmethod
    def _details(payload: dict[str, Any]) -> dict[str, Any]:
        device = payload["device"]
        details: dict[str, Any] = {"platform": device["type"]}
        if device.get("attributes"):
            details["attributes"] = device["attributes"]
        return details


class DeleteDevice(PeopleCall):
    """Pipelines `Device Deleted`; Track DELETE /api/v1/customers/{id}/devices/{token}."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        device = {k: v for k, v in payload["device"].items() if k in ("token", "type")}
        return semantic_event(payload, keys, "Device Deleted", context={"device": device})

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        token = path_id(payload["device"]["token"])
        return Request("track", "DELETE", person_path(payload["userId"], f"/devices/{token}"))

    def track_operation(self, payload: dict[str, Any], keys: StepKeys) -> dict[str, Any]:
        device = {"token": payload["device"]["token"]}
        return person_operation(payload, "delete_device", device=device)


register(
    people_kind(
        "add_device",
        "Add or update a person's device: userId, device (token, type ios | android, attributes).",
        AddDevice(),
    )
)
register(
    people_kind(
        "delete_device", "Remove a person's device: userId, device (token).", DeleteDevice()
    )
)
