"""group, delete_object, delete_relationship: objects (accounts, companies) and people's ties to them."""

from __future__ import annotations

from typing import Any

from ...errors import NeedsPipelines
from ..types import Request, StepKeys
from .people_calls import (
    DEFAULT_OBJECT_TYPE,
    ENTITY,
    PeopleCall,
    object_identifiers,
    people_kind,
    person_operation,
    pipelines_call,
    semantic_event,
    text,
)
from .registry import register


def _object_type(payload: dict[str, Any]) -> Any:
    return payload.get("objectTypeId", DEFAULT_OBJECT_TYPE)


def _event_properties(payload: dict[str, Any]) -> dict[str, Any]:
    """Pipelines' spelling: objectId a string, objectTypeId an integer."""
    return {"objectId": text(payload["groupId"]), "objectTypeId": int(_object_type(payload))}


class Group(PeopleCall):
    """Pipelines /v1/group; Track v2 object identify that also relates the person."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        traits = payload.get("traits")
        if traits and "object_type_id" in traits:  # Pipelines wants the type as a string
            payload = {
                **payload,
                "traits": {**traits, "object_type_id": text(traits["object_type_id"])},
            }
        return pipelines_call("group", payload, keys)

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        if "userId" not in payload:
            raise NeedsPipelines("group with only anonymousId needs the Pipelines API")
        attributes = dict(payload.get("traits") or {})
        object_type = attributes.pop("object_type_id", DEFAULT_OBJECT_TYPE)
        relationship: dict[str, Any] = {"identifiers": {"id": text(payload["userId"])}}
        if "relationshipAttributes" in attributes:
            relationship["relationship_attributes"] = attributes.pop("relationshipAttributes")
        operation = {
            "type": "object",
            "identifiers": object_identifiers(payload["groupId"], object_type),
            "action": "identify",
            "attributes": attributes,
            "cio_relationships": [relationship],
        }
        return Request("track", "POST", ENTITY, operation)


class DeleteObject(PeopleCall):
    """Pipelines `Object Deleted` event; Track v2 object delete."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        # The spec requires an anonymousId on this event though no person is involved: the
        # messageId serves, stable for the step and row like the messageId itself.
        return semantic_event(
            payload,
            keys,
            "Object Deleted",
            anonymousId=keys.message_id,
            properties=_event_properties(payload),
        )

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        operation = {
            "type": "object",
            "identifiers": object_identifiers(payload["groupId"], _object_type(payload)),
            "action": "delete",
        }
        return Request("track", "POST", ENTITY, operation)


class DeleteRelationship(PeopleCall):
    """Pipelines `Relationship Deleted` event; Track v2 person delete_relationships."""

    def pipelines(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        return semantic_event(
            payload, keys, "Relationship Deleted", properties=_event_properties(payload)
        )

    def track(self, payload: dict[str, Any], keys: StepKeys) -> Request:
        target = {"identifiers": object_identifiers(payload["groupId"], _object_type(payload))}
        operation = person_operation(payload, "delete_relationships", cio_relationships=[target])
        return Request("track", "POST", ENTITY, operation)


register(
    people_kind(
        "group",
        "Relate a person to an object (account, company): userId or anonymousId, groupId,"
        " traits (object_type_id, relationshipAttributes, object attributes).",
        Group(),
    )
)
register(
    people_kind(
        "delete_object",
        "Delete an object and its relationships: groupId, objectTypeId (default 1).",
        DeleteObject(),
    )
)
register(
    people_kind(
        "delete_relationship",
        "Remove a person's relationship to an object: userId, groupId, objectTypeId (default 1).",
        DeleteRelationship(),
    )
)
