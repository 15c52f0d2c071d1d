"""Pipelines (CDP) API: POST /v1/identify, track, page, screen, group, alias, batch.

Permissive by default, like Customer.io: anything invalid (bad key, bad JSON, a missing userId, an
oversized call) still answers 200 `{}` but is not stored. The request log notes why it was
ignored. With `X-Strict-Mode: 1` the same problems answer 400/401 with `{"meta":{"errors":[...]}}`.
In a batch, permissive mode keeps the valid items and drops the invalid ones; strict mode refuses
the whole batch (nothing stored) on the first invalid item. An oversized batch (> 500 KB) is
dropped whole in permissive mode.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .core import PIPELINES, ApiError, Req, collect, optional_object, route
from .state import State
from .store import Store

CALL_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
TYPES = ("identify", "track", "page", "screen", "group", "alias")


def _post(kind: str):
    def handler(state: State, req: Req) -> tuple[int, Any]:
        if req.size > CALL_LIMIT:
            raise ApiError(400, f"{kind} call exceeds 32 KB")
        if not isinstance(req.body, dict):
            raise ApiError(400, "request body must be a JSON object")
        process(state.store, kind, req.body)
        return 200, {}

    handler.__name__ = f"pipelines_{kind}"
    return route("POST", f"/v1/{kind}", PIPELINES)(handler)


for _kind in TYPES:
    globals()[f"pipelines_{_kind}"] = _post(_kind)


@route("POST", "/v1/batch", PIPELINES)
def pipelines_batch(state: State, req: Req) -> tuple[int, Any]:
    if req.size > BATCH_LIMIT:
        raise ApiError(400, "batch exceeds 500 KB")
    body = req.body
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise ApiError(400, "'batch' must be a list of calls")
    items = body["batch"]
    if req.strict:  # refuse the whole batch before storing anything
        for i, item in enumerate(items):
            _check_item(item, i, req.size)
            try:
                validate(item["type"], item)
            except ApiError as exc:
                raise ApiError(400, f"batch[{i}]: {exc.message}") from None
    for i, item in enumerate(items):
        try:
            _check_item(item, i, req.size)
            process(state.store, item["type"], item)
        except ApiError:
            continue  # permissive: the item is dropped, the others kept
    return 200, {}


def _check_item(item: Any, i: int, total: int) -> None:
    if not isinstance(item, dict) or item.get("type") not in TYPES:
        raise ApiError(400, f"batch[{i}]: 'type' must be one of {', '.join(TYPES)}")
    if total > CALL_LIMIT and len(json.dumps(item)) > CALL_LIMIT:
        raise ApiError(400, f"batch[{i}]: item exceeds 32 KB")


# -- validation -----------------------------------------------------------------------------


def _user(msg: dict[str, Any]) -> tuple[str | None, str | None]:
    uid, anon = msg.get("userId"), msg.get("anonymousId")
    uid = None if uid in (None, "") else uid
    anon = None if anon in (None, "") else anon
    for name, value in (("userId", uid), ("anonymousId", anon)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ApiError(400, f"'{name}' must be a string")
    if uid is None and anon is None:
        raise ApiError(400, "userId or anonymousId is required")
    return (None if uid is None else str(uid)), (None if anon is None else str(anon))


def iso_to_unix(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"'{field}' must be an ISO-8601 string")
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise ApiError(400, f"'{field}' is not an ISO-8601 timestamp") from None


def validate(kind: str, msg: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """Check a call; returns (userId, anonymousId, timestamp)."""
    if kind == "alias":
        if not msg.get("previousId") or not msg.get("userId"):
            raise ApiError(400, "alias needs 'previousId' and 'userId'")
        user: str | None = str(msg["userId"])
        anon: str | None = None
    else:
        user, anon = _user(msg)
    if kind == "track" and (not isinstance(msg.get("event"), str) or not msg["event"]):
        raise ApiError(400, "track needs an 'event' name")
    if kind == "group" and msg.get("groupId") in (None, ""):
        raise ApiError(400, "group needs a 'groupId'")
    for key in ("traits", "properties", "context"):
        optional_object(msg, key)
    return user, anon, iso_to_unix(msg.get("timestamp"), "timestamp")


# -- effects --------------------------------------------------------------------------------


def process(store: Store, kind: str, msg: dict[str, Any]) -> None:
    user, anon, ts = validate(kind, msg)
    message_id = msg.get("messageId")
    if message_id and not store.first_time(f"p:{message_id}"):
        return  # same messageId twice: stored once
    EFFECTS[kind](store, msg, user, anon, ts)


def _identify(store: Store, msg: dict, user: str | None, anon: str | None, ts: int | None) -> None:
    attrs = dict(msg.get("traits") or {})
    email = attrs.pop("email", None)
    created = attrs.pop("createdAt", None)
    if created is not None:
        attrs["created_at"] = iso_to_unix(created, "traits.createdAt")
    if user is None and not email:
        return  # anonymous traits only live on the anonymous profile, which is not modelled
    pk = store.identify(user, email if isinstance(email, str) else None, attrs, ts=ts)
    if pk is not None and anon:
        store.adopt_anonymous(pk, anon)


def _person(store: Store, user: str | None, anon: str | None, ts: int | None) -> int | None:
    """The person an event belongs to, created on first sight (as Customer.io does)."""
    if user is None:
        return None
    pk = store.find("id", user)
    if pk is None:
        pk = store.identify(user, ts=ts)
    if pk is not None and anon:
        store.adopt_anonymous(pk, anon)
    return pk


def _track(store: Store, msg: dict, user: str | None, anon: str | None, ts: int | None) -> None:
    name = msg["event"]
    props = msg.get("properties") or {}
    semantic = SEMANTIC.get(name)
    if semantic is not None:
        semantic(store, msg, user, props)
        return
    if store.is_suppressed(user):
        return
    pk = _person(store, user, anon, ts)
    store.add_event(
        pk,
        name,
        props,
        timestamp=ts,
        family=PIPELINES,
        anonymous_id=anon,
        message_id=msg.get("messageId"),
    )


def _view(kind: str):
    def effect(store: Store, msg: dict, user: str | None, anon: str | None, ts: int | None):
        if store.is_suppressed(user):
            return
        pk = _person(store, user, anon, ts)
        store.add_event(
            pk,
            str(msg.get("name") or ""),
            msg.get("properties") or {},
            type=kind,
            timestamp=ts,
            family=PIPELINES,
            anonymous_id=anon,
            message_id=msg.get("messageId"),
        )

    return effect


def _group(store: Store, msg: dict, user: str | None, anon: str | None, ts: int | None) -> None:
    traits = dict(msg.get("traits") or {})
    type_id = str(traits.pop("object_type_id", None) or msg.get("objectTypeId") or "1")
    relationship = traits.pop("relationshipAttributes", None)
    if relationship is not None and not isinstance(relationship, dict):
        raise ApiError(400, "'traits.relationshipAttributes' must be an object")
    object_id = str(msg["groupId"])
    store.put_object(type_id, object_id, traits)
    if store.is_suppressed(user):
        return
    pk = _person(store, user, anon, ts)
    if pk is not None:
        store.relate(pk, type_id, object_id, attributes=relationship)


def _alias(store: Store, msg: dict, user: str | None, anon: str | None, ts: int | None) -> None:
    previous = str(msg["previousId"])
    target = _person(store, user, None, ts)
    old = store.find("id", previous)
    if old is not None and target is not None and old != target:
        store.merge(target, old)
    if target is not None:
        store.adopt_anonymous(target, previous)


EFFECTS = {
    "identify": _identify,
    "track": _track,
    "page": _view("page"),
    "screen": _view("screen"),
    "group": _group,
    "alias": _alias,
}


# -- semantic events (reserved names on /v1/track) -------------------------------------------


def _user_deleted(store: Store, msg: dict, user: str | None, props: dict) -> None:
    pk = store.find("id", user) if user else None
    if pk is not None:
        store.delete_person(pk)


def _user_suppressed(store: Store, msg: dict, user: str | None, props: dict) -> None:
    pk = store.find("id", user) if user else None
    if pk is not None:
        store.suppress(pk)
    elif user:
        store.db.execute("INSERT OR IGNORE INTO suppressions VALUES(?)", (user,))


def _user_unsuppressed(store: Store, msg: dict, user: str | None, props: dict) -> None:
    if user:
        store.unsuppress(user)


def _device(msg: dict, props: dict) -> dict[str, Any]:
    device = dict(optional_object(msg.get("context") or {}, "device"))
    token = device.get("token") or props.get("device_id") or props.get("token")
    if not token:
        raise ApiError(400, "device events need context.device.token")
    platform = device.get("type") or props.get("device_type") or props.get("platform")
    extra = {k: v for k, v in props.items() if k not in ("device_id", "token", "device_type")}
    return {"id": token, "platform": platform, "attributes": extra}


def _device_updated(store: Store, msg: dict, user: str | None, props: dict) -> None:
    device = _device(msg, props)
    pk = store.find("id", user) if user else None
    if pk is None and user:
        pk = store.identify(user)
    if pk is not None:
        store.put_device(pk, device)


def _device_deleted(store: Store, msg: dict, user: str | None, props: dict) -> None:
    device = _device(msg, props)
    if not user:  # an anonymous device: the token alone says which
        store.delete_device(None, str(device["id"]))
        return
    pk = store.find("id", user)
    if pk is not None:
        store.delete_device(pk, str(device["id"]))


def _object_ids(props: dict) -> tuple[str, str]:
    object_id = props.get("objectId") or props.get("object_id") or props.get("groupId")
    if not object_id:
        raise ApiError(400, "needs properties.objectId")
    type_id = props.get("objectTypeId") or props.get("object_type_id") or "1"
    return str(type_id), str(object_id)


def _relationship_deleted(store: Store, msg: dict, user: str | None, props: dict) -> None:
    pk = store.find("id", user) if user else None
    if pk is not None:
        store.relate(pk, *_object_ids(props), remove=True)


def _object_deleted(store: Store, msg: dict, user: str | None, props: dict) -> None:
    store.delete_object(*_object_ids(props))


def _report_delivery(store: Store, msg: dict, user: str | None, props: dict) -> None:
    store.add_event(
        None, "Report Delivery Event", props, family=PIPELINES, message_id=msg.get("messageId")
    )


SEMANTIC = {
    "User Deleted": _user_deleted,
    "User Suppressed": _user_suppressed,
    "User Unsuppressed": _user_unsuppressed,
    "Device Created or Updated": _device_updated,
    "Device Deleted": _device_deleted,
    "Relationship Deleted": _relationship_deleted,
    "Object Deleted": _object_deleted,
    "Report Delivery Event": _report_delivery,
}

ROUTES = collect(globals())
