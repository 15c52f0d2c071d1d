"""Track API v2: POST /api/v2/entity (one operation) and /api/v2/batch (many).

A batch answers 200 when every item was valid, else 207 with
`{"errors": [{"batch_index", "reason", "field", "message"}]}`; valid items are kept either way.
Each item runs under its own SAVEPOINT, so an item that fails halfway leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from .core import ERRORS_FIELD, TRACK, ApiError, Req, byte_len, collect, optional_object, route
from .state import State
from .store import CIO_ID, EMAIL, ID, Store, dumps
from .track import (
    check_event,
    check_identifier,
    person_ref,
    put_device,
    relate_all,
    relationship_attributes,
    unix,
    upsert,
)

ENTITY_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
PERSON_ACTIONS = (
    "identify",
    "delete",
    "event",
    "screen",
    "page",
    "add_relationships",
    "delete_relationships",
    "add_device",
    "delete_device",
    "merge",
    "suppress",
    "unsuppress",
)
OBJECT_ACTIONS = (
    "identify",
    "identify_anonymous",
    "delete",
    "add_relationships",
    "delete_relationships",
)


@route("POST", "/api/v2/entity", TRACK, style=ERRORS_FIELD)
def entity(state: State, req: Req) -> tuple[int, Any]:
    if req.size > ENTITY_LIMIT:
        raise ApiError(400, "entity operation exceeds 32 KB", reason="too_large")
    operate(state.store, req.body)
    return 200, {}


@route("POST", "/api/v2/batch", TRACK, style=ERRORS_FIELD)
def batch(state: State, req: Req) -> tuple[int, Any]:
    if req.size > BATCH_LIMIT:
        raise ApiError(400, "batch exceeds 500 KB", reason="too_large")
    if not isinstance(req.body, dict) or not isinstance(req.body.get("batch"), list):
        raise ApiError(
            400, "'batch' must be a list of operations", field="batch", reason="required"
        )
    errors = []
    db = state.store.db
    for index, op in enumerate(req.body["batch"]):
        db.execute("SAVEPOINT item")
        try:
            if req.size > ENTITY_LIMIT and len(dumps(op).encode()) > ENTITY_LIMIT:
                raise ApiError(400, "operation exceeds 32 KB", reason="too_large")
            operate(state.store, op)
        except ApiError as exc:
            db.execute("ROLLBACK TO item")
            errors.append(
                {
                    "batch_index": index,
                    "reason": exc.reason,
                    "field": exc.field or "",
                    "message": exc.message,
                }
            )
        db.execute("RELEASE item")
    if errors:
        return 207, {"errors": errors}
    return 200, {}


def operate(store: Store, op: Any) -> None:
    if not isinstance(op, dict):
        raise ApiError(400, "each operation must be an object")
    kind, action = op.get("type"), op.get("action")
    if kind == "person":
        if action not in PERSON_ACTIONS:
            raise ApiError(400, f"unknown person action {action!r}", field="action")
        _person(store, action, op)
    elif kind == "object":
        if action not in OBJECT_ACTIONS:
            raise ApiError(400, f"unknown object action {action!r}", field="action")
        _object(store, action, op)
    elif kind == "delivery":
        _delivery(store, op)
    else:
        raise ApiError(
            400,
            "type must be person, object or delivery",
            field="type",
            reason="required" if kind is None else "invalid",
        )


def _identifiers(op: dict[str, Any]) -> tuple[str, str]:
    ident = op.get("identifiers")
    if not isinstance(ident, dict) or not ident:
        raise ApiError(400, "'identifiers' is required", field="identifiers", reason="required")
    if len(ident) != 1:
        raise ApiError(400, "pass exactly one identifier", field="identifiers")
    ((kind, value),) = ident.items()
    if kind == "phone":
        raise ApiError(
            400,
            "phone is not enabled as an identifier in this workspace",
            field="identifiers.phone",
        )
    if kind not in (ID, EMAIL, CIO_ID):
        raise ApiError(400, f"unknown identifier {kind!r}", field="identifiers")
    if value in (None, "") or isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(
            400,
            f"identifiers.{kind} must be a non-empty string",
            field=f"identifiers.{kind}",
            reason="required",
        )
    return kind, check_identifier(str(value), f"identifiers.{kind}")


def _person(store: Store, action: str, op: dict[str, Any]) -> None:
    if action == "merge":
        primary = person_ref(store, op.get("primary"), "primary")
        secondary = person_ref(store, op.get("secondary"), "secondary")
        if primary is not None and secondary is not None:
            store.merge(primary, secondary)
        return
    kind, value = _identifiers(op)
    if action == "identify":
        attrs = dict(optional_object(op, "attributes"))
        if "cio_relationships" in op:
            attrs["cio_relationships"] = op["cio_relationships"]
        upsert(store, kind, value, attrs)
        return
    if action == "unsuppress":
        store.unsuppress(value)
        return
    pk = store.find(kind, value)
    if action == "suppress":
        if pk is not None:
            store.suppress(pk)
        else:
            store.db.execute("INSERT OR IGNORE INTO suppressions VALUES(?)", (value,))
    elif action == "delete":
        if pk is not None:
            store.delete_person(pk)
    elif action in ("event", "screen", "page"):
        _event(store, action, op, kind, value, pk)
    elif action in ("add_relationships", "delete_relationships"):
        if pk is None and action == "add_relationships":
            pk = upsert(store, kind, value, {})
        if pk is not None:
            relate_all(
                store, pk, op.get("cio_relationships"), remove=action == "delete_relationships"
            )
    elif action == "add_device":
        pk = pk if pk is not None else upsert(store, kind, value, {})
        if pk is not None:
            put_device(store, pk, op.get("device"))
    elif action == "delete_device":
        device = op.get("device")
        if not isinstance(device, dict) or not device.get("token"):
            raise ApiError(400, "device.token is required", field="device.token", reason="required")
        if pk is not None:
            store.delete_device(pk, str(device["token"]))


def _event(store: Store, action: str, op: dict, kind: str, value: str, pk: int | None) -> None:
    name, data = op.get("name"), optional_object(op, "attributes")
    if action == "event" or name is not None:
        check_event(name, data)
    event_id = op.get("id")
    if event_id and not store.first_time(f"t:{kind}:{value}:{event_id}"):
        return
    if store.is_suppressed(value):
        return
    if pk is None:
        pk = upsert(store, kind, value, {})
    if pk is not None:
        store.add_event(
            pk,
            str(name or ""),
            data,
            type=action,
            timestamp=unix(op.get("timestamp")),
            family=TRACK,
            message_id=None if event_id is None else str(event_id),
        )


def _object(store: Store, action: str, op: dict[str, Any]) -> None:
    ident = op.get("identifiers")
    if not isinstance(ident, dict) or (
        not ident.get("object_id") and action != "identify_anonymous"
    ):
        raise ApiError(
            400,
            "identifiers.object_id is required",
            field="identifiers.object_id",
            reason="required",
        )
    type_id = str(ident.get("object_type_id") or "1")
    object_id = str(ident.get("object_id") or ident.get("anonymous_id") or "")
    if byte_len(object_id) > 150:
        raise ApiError(400, "object_id is longer than 150 bytes", field="identifiers.object_id")
    if action == "delete":
        store.delete_object(type_id, object_id)
        return
    if action in ("identify", "identify_anonymous"):
        store.put_object(type_id, object_id, optional_object(op, "attributes"))
    people = op.get("cio_relationships") or []
    if not isinstance(people, list):
        raise ApiError(400, "cio_relationships must be a list", field="cio_relationships")
    for rel in people:
        ref = rel.get("identifiers") if isinstance(rel, dict) else None
        pk = person_ref(store, ref, "cio_relationships.identifiers")
        if pk is not None:
            store.relate(
                pk,
                type_id,
                object_id,
                remove=action == "delete_relationships",
                attributes=relationship_attributes(rel),
            )


def _delivery(store: Store, op: dict[str, Any]) -> None:
    ident = op.get("identifiers")
    if not isinstance(ident, dict) or not ident.get("id"):
        raise ApiError(
            400,
            "identifiers.id (the delivery id) is required",
            field="identifiers.id",
            reason="required",
        )
    if op.get("action") != "event":
        raise ApiError(400, "delivery action must be event", field="action")
    if op.get("name") not in ("opened", "converted", "delivered"):
        raise ApiError(400, "name must be opened, converted or delivered", field="name")
    store.add_event(
        None,
        str(op["name"]),
        {"delivery_id": ident["id"], **optional_object(op, "attributes")},
        type="delivery",
        timestamp=unix(op.get("timestamp")),
        family=TRACK,
    )


ROUTES = collect(globals())
