"""Track API v1: /api/v1/customers..., /api/v1/events, merge, manual segments, region.

Path identifiers are an id, an email, or `cio_<cio_id>` (uvicorn has already percent-decoded the
path). Success is 200 `{}`; bad input 400 `{"meta":{"errors":[...]}}`.
"""

from __future__ import annotations

from typing import Any

from .core import META_ERROR, TRACK, ApiError, Req, byte_len, collect, require_object, route
from .state import State
from .store import CIO_ID, EMAIL, ID, Store, dumps, track_identifier

ID_LIMIT = 150
NAME_LIMIT = 150
VALUE_LIMIT = 1000
ATTRIBUTE_COUNT = 300
EVENT_NAME_LIMIT = 100
EVENT_DATA_LIMIT = 100 * 1024
PLATFORMS = ("ios", "android")


# -- limits shared with v2 ------------------------------------------------------------------


def check_identifier(value: str, field: str = "identifier") -> str:
    if byte_len(value) > ID_LIMIT:
        raise ApiError(
            400, f"{field} is longer than {ID_LIMIT} bytes", field=field, reason="too_long"
        )
    return value


def check_attributes(attrs: dict[str, Any], field: str = "attributes") -> None:
    if len(attrs) > ATTRIBUTE_COUNT:
        raise ApiError(
            400,
            f"too many attributes: {len(attrs)} (at most {ATTRIBUTE_COUNT})",
            field=field,
            reason="too_many",
        )
    for name, value in attrs.items():
        if byte_len(name) > NAME_LIMIT:
            raise ApiError(
                400,
                f"attribute name longer than {NAME_LIMIT} bytes",
                field=field,
                reason="too_long",
            )
        if value is None:
            continue
        text = value if isinstance(value, str) else dumps(value)
        if len(text) > VALUE_LIMIT // 4 and byte_len(text) > VALUE_LIMIT:
            raise ApiError(
                400,
                f"attribute '{name}' value longer than {VALUE_LIMIT} bytes",
                field=f"{field}.{name}",
                reason="too_long",
            )


def check_event(name: Any, data: Any, field: str = "name") -> None:
    if not isinstance(name, str) or not name:
        raise ApiError(400, "event name is required", field=field, reason="required")
    if byte_len(name) > EVENT_NAME_LIMIT:
        raise ApiError(
            400, f"event name longer than {EVENT_NAME_LIMIT} bytes", field=field, reason="too_long"
        )
    if data is not None and not isinstance(data, dict):
        raise ApiError(400, "event data must be an object", field="data")
    if data and len(dumps(data).encode()) > EVENT_DATA_LIMIT:
        raise ApiError(400, "event data larger than 100 KB", field="data", reason="too_large")


def unix(value: Any, field: str = "timestamp") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"{field} must be a unix timestamp", field=field)
    try:
        return int(float(value))
    except ValueError:
        raise ApiError(400, f"{field} must be a unix timestamp", field=field) from None


def upsert(store: Store, kind: str, value: str, attrs: dict[str, Any]) -> int | None:
    """Identify by one identifier with a flat attribute map (v1 PUT and v2 identify)."""
    attrs = dict(attrs)
    update_only = bool(attrs.pop("_update", False))
    relationships = attrs.pop("cio_relationships", None)
    email = attrs.pop("email", None)
    new_id = attrs.pop("id", None)
    attrs.pop("cio_id", None)
    if "created_at" in attrs:
        attrs["created_at"] = unix(attrs["created_at"], "created_at")
    check_attributes(attrs)
    if email is not None and not isinstance(email, str):
        raise ApiError(400, "email must be a string", field="email")
    if kind == ID:
        pk = store.identify(value, email, attrs, update_only=update_only)
    elif kind == EMAIL:
        pk = store.find_track(value)
        if pk is None:
            id_ = None if new_id is None else check_identifier(str(new_id), "id")
            pk = store.identify(id_, value, attrs, update_only=update_only)
        else:
            store.identify(None, email, attrs, cio_id=store.known_person(pk)["cio_id"])
    else:
        pk = store.find(CIO_ID, value)
        if pk is not None:
            store.identify(None, email, attrs, cio_id=value)
    if pk is not None and new_id is not None and kind != ID:
        _set_id(store, pk, check_identifier(str(new_id), "id"))
    if pk is not None and relationships:
        relate_all(store, pk, relationships)
    return pk


def _set_id(store: Store, pk: int, new_id: str) -> None:
    other = store.find(ID, new_id)
    if other is not None and other != pk:
        raise ApiError(400, "id is already used by another person", field="id")
    store.db.execute("UPDATE people SET id=? WHERE pk=?", (new_id, pk))


def relate_all(store: Store, pk: int, relationships: Any, *, remove: bool = False) -> None:
    items = relationships.get("relationships") if isinstance(relationships, dict) else relationships
    if not isinstance(items, list):
        raise ApiError(400, "cio_relationships must be a list", field="cio_relationships")
    for item in items:
        ident = (item or {}).get("identifiers") if isinstance(item, dict) else None
        if not isinstance(ident, dict) or not ident.get("object_id"):
            raise ApiError(
                400,
                "each relationship needs identifiers.object_id",
                field="cio_relationships",
                reason="required",
            )
        type_id, object_id = str(ident.get("object_type_id") or "1"), str(ident["object_id"])
        if not remove:
            store.put_object(type_id, object_id, {})
        store.relate(
            pk, type_id, object_id, remove=remove, attributes=relationship_attributes(item)
        )


def relationship_attributes(item: dict[str, Any]) -> dict[str, Any] | None:
    value = item.get("relationship_attributes")
    if value is not None and not isinstance(value, dict):
        raise ApiError(
            400, "relationship_attributes must be an object", field="relationship_attributes"
        )
    return value


def find_or_create(store: Store, identifier: str) -> int | None:
    """Events for someone unknown create them (unless suppressed)."""
    pk = store.find_track(identifier)
    if pk is None:
        kind, value = track_identifier(identifier)
        if kind == ID:
            pk = store.identify(value)
        elif kind == EMAIL:
            pk = store.identify(None, value)
    return pk


def put_device(store: Store, pk: int, device: Any, field: str = "device") -> None:
    if not isinstance(device, dict):
        raise ApiError(400, "'device' must be an object", field=field, reason="required")
    if not (device.get("id") or device.get("token")):
        raise ApiError(400, "device id (token) is required", field=f"{field}.id", reason="required")
    platform = device.get("platform")
    if platform is not None and platform not in PLATFORMS:
        raise ApiError(400, "device platform must be ios or android", field=f"{field}.platform")
    store.put_device(pk, device)


# -- endpoints ------------------------------------------------------------------------------


@route("PUT", "/api/v1/customers/{identifier}", TRACK)
def put_customer(state: State, req: Req) -> tuple[int, Any]:
    ident = check_identifier(req.params["identifier"])
    attrs = require_object(req.body)
    kind, value = track_identifier(ident)
    upsert(state.store, kind, value, attrs)
    return 200, {}


@route("DELETE", "/api/v1/customers/{identifier}", TRACK)
def delete_customer(state: State, req: Req) -> tuple[int, Any]:
    pk = state.store.find_track(req.params["identifier"])
    if pk is not None:
        state.store.delete_person(pk)
    return 200, {}


def _event_fields(body: Any) -> tuple[str, dict, int | None, str]:
    body = require_object(body)
    name, data = body.get("name"), body.get("data")
    check_event(name, data)
    kind = body.get("type") or "event"
    if kind not in ("event", "page", "screen"):
        raise ApiError(400, "type must be event, page or screen", field="type")
    return name, data or {}, unix(body.get("timestamp")), kind


@route("POST", "/api/v1/customers/{identifier}/events", TRACK)
def customer_event(state: State, req: Req) -> tuple[int, Any]:
    store = state.store
    ident = check_identifier(req.params["identifier"])
    name, data, ts, kind = _event_fields(req.body)
    event_id = req.body.get("id")
    if event_id and not store.first_time(f"t:{ident}:{event_id}"):
        return 200, {}
    _, value = track_identifier(ident)
    if store.is_suppressed(value):
        return 200, {}
    pk = find_or_create(store, ident)
    store.add_event(
        pk,
        name,
        data,
        type=kind,
        timestamp=ts,
        family=TRACK,
        message_id=None if event_id is None else str(event_id),
    )
    return 200, {}


@route("POST", "/api/v1/events", TRACK)
def anonymous_event(state: State, req: Req) -> tuple[int, Any]:
    name, data, ts, kind = _event_fields(req.body)
    event_id = req.body.get("id")
    if event_id and not state.store.first_time(f"t::{event_id}"):
        return 200, {}
    anon = req.body.get("anonymous_id")
    state.store.add_event(
        None,
        name,
        data,
        type=kind,
        timestamp=ts,
        family=TRACK,
        anonymous_id=None if anon is None else str(anon),
        message_id=None if event_id is None else str(event_id),
    )
    return 200, {}


@route("POST", "/api/v1/customers/{identifier}/suppress", TRACK)
def suppress(state: State, req: Req) -> tuple[int, Any]:
    ident = check_identifier(req.params["identifier"])
    pk = state.store.find_track(ident)
    if pk is not None:
        state.store.suppress(pk)
    else:
        state.store.db.execute(
            "INSERT OR IGNORE INTO suppressions VALUES(?)", (track_identifier(ident)[1],)
        )
    return 200, {}


@route("POST", "/api/v1/customers/{identifier}/unsuppress", TRACK)
def unsuppress(state: State, req: Req) -> tuple[int, Any]:
    state.store.unsuppress(track_identifier(req.params["identifier"])[1])
    return 200, {}


@route("PUT", "/api/v1/customers/{identifier}/devices", TRACK)
def put_devices(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    if "device" not in body:
        raise ApiError(400, "'device' is required", field="device", reason="required")
    pk = find_or_create(state.store, check_identifier(req.params["identifier"]))
    if pk is not None:
        put_device(state.store, pk, body["device"])
    return 200, {}


@route("DELETE", "/api/v1/customers/{identifier}/devices/{device_id}", TRACK)
def delete_device(state: State, req: Req) -> tuple[int, Any]:
    pk = state.store.find_track(req.params["identifier"])
    if pk is not None:
        state.store.delete_device(pk, req.params["device_id"])
    return 200, {}


def person_ref(store: Store, ref: Any, field: str) -> int | None:
    """{"id"|"email"|"cio_id": value}, exactly one key."""
    if not isinstance(ref, dict) or len(ref) != 1 or next(iter(ref)) not in (ID, EMAIL, CIO_ID):
        raise ApiError(400, f"'{field}' needs exactly one of id, email, cio_id", field=field)
    ((kind, value),) = ref.items()
    if value in (None, ""):
        raise ApiError(400, f"'{field}.{kind}' must not be empty", field=f"{field}.{kind}")
    return store.find(kind, str(value))


@route("POST", "/api/v1/merge_customers", TRACK, style=META_ERROR)
def merge_customers(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    primary = person_ref(state.store, body.get("primary"), "primary")
    secondary = person_ref(state.store, body.get("secondary"), "secondary")
    if primary is not None and secondary is not None:
        state.store.merge(primary, secondary)
    return 200, {}


def _manual_segment(state: State, req: Req) -> tuple[int, list[str], str]:
    raw = req.params["segment_id"]
    if not raw.isdigit():
        raise ApiError(400, "segment_id must be a number")
    row = state.store.db.execute("SELECT type FROM segments WHERE id=?", (int(raw),)).fetchone()
    if row is None:
        raise ApiError(404, "segment not found")
    if row[0] != "manual":
        raise ApiError(400, "only manual segments accept members")
    body = require_object(req.body)
    ids = body.get("ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
        raise ApiError(400, "'ids' must be a list of 1 to 1000 identifiers", field="ids")
    id_type = req.query.get("id_type") or ID
    if id_type not in (ID, EMAIL, CIO_ID):
        raise ApiError(400, "id_type must be id, email or cio_id")
    return int(raw), [str(i) for i in ids if isinstance(i, str | int)], id_type


@route("POST", "/api/v1/segments/{segment_id}/add_customers", TRACK)
def add_customers(state: State, req: Req) -> tuple[int, Any]:
    seg, ids, id_type = _manual_segment(state, req)
    for value in ids:
        pk = state.store.find(id_type, value)
        if pk is not None:  # entries that match nobody are ignored
            state.store.db.execute("INSERT OR IGNORE INTO segment_members VALUES(?,?)", (seg, pk))
    return 200, {}


@route("POST", "/api/v1/segments/{segment_id}/remove_customers", TRACK)
def remove_customers(state: State, req: Req) -> tuple[int, Any]:
    seg, ids, id_type = _manual_segment(state, req)
    for value in ids:
        pk = state.store.find(id_type, value)
        if pk is not None:
            state.store.db.execute(
                "DELETE FROM segment_members WHERE segment_id=? AND pk=?", (seg, pk)
            )
    return 200, {}


@route("GET", "/api/v1/accounts/region", TRACK, mutating=False)
def region(state: State, req: Req) -> tuple[int, Any]:
    # The emulator is its own "region": clients that follow `url` stay on it.
    return 200, {"url": req.root, "region": "us", "environment_id": 1}


ROUTES = collect(globals())
