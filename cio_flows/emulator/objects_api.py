"""Objects and relationships through the App API, from what Track and Pipelines stored:
GET /v1/object_types, POST /v1/objects (search), GET /v1/objects/{type}/{id}/attributes and
/relationships, GET /v1/customers/{id}/relationships.

Object types are the type ids objects were stored under (the emulator has no type settings:
names are `Type <id>`). `cio_object_id` is derived from the type and id, stable across reads.
The search filter takes `and`/`or`/`not` over `object_attribute` conditions (`eq`, `exists`,
`contains`); an object that does not exist is 404 (undocumented; README: deviations).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .app_api import lookup_person
from .core import APP, ApiError, Req, collect, require_object, route
from .messages import page_of
from .state import State

PAGE = (50, 1000)


def cio_object_id(type_id: str, object_id: str) -> str:
    return "ob" + hashlib.sha1(f"{type_id}:{object_id}".encode()).hexdigest()[:10]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _object(state: State, type_id: str, object_id: str) -> dict[str, Any]:
    row = state.store.db.execute(
        "SELECT attributes FROM objects WHERE type_id=? AND object_id=?", (type_id, object_id)
    ).fetchone()
    if row is None:
        raise ApiError(404, f"object {type_id}/{object_id} not found")
    return json.loads(row[0])


@route("GET", "/v1/object_types", APP, mutating=False)
def object_types(state: State, req: Req) -> tuple[int, Any]:
    rows = state.store.db.execute("SELECT DISTINCT type_id FROM objects ORDER BY type_id")
    types = [
        {
            "id": type_id,
            "name": f"Type {type_id}",
            "singular_name": f"Type {type_id}",
            "slug": f"type-{type_id}",
            "singular_slug": f"type-{type_id}",
            "icon": "folder",
            "enabled": True,
        }
        for (type_id,) in rows
    ]
    return 200, {"types": types}


@route("GET", "/v1/objects/{object_type_id}/{object_id}/attributes", APP, mutating=False)
def object_attributes(state: State, req: Req) -> tuple[int, Any]:
    type_id, object_id = req.params["object_type_id"], req.params["object_id"]
    attrs = _object(state, type_id, object_id)
    identifiers = {"object_id": object_id, "cio_object_id": cio_object_id(type_id, object_id)}
    return 200, {
        "object": {
            "attributes": {k: _text(v) for k, v in attrs.items()},
            "timestamps": dict.fromkeys(attrs, 0),
            "identifiers": identifiers,
            "object_type_id": type_id,
        }
    }


@route("GET", "/v1/objects/{object_type_id}/{object_id}/relationships", APP, mutating=False)
def object_relationships(state: State, req: Req) -> tuple[int, Any]:
    type_id, object_id = req.params["object_type_id"], req.params["object_id"]
    _object(state, type_id, object_id)
    people = state.store.db.execute(
        "SELECT p.cio_id, p.id, p.email FROM relationships r JOIN people p ON p.pk=r.pk"
        " WHERE r.type_id=? AND r.object_id=? ORDER BY r.pk",
        (type_id, object_id),
    ).fetchall()
    rows = [
        {
            "identifiers": {"cio_id": cio_id, "id": pid, "email": email},
            "object_type_id": type_id,
            "object_type_disabled": False,
        }
        for cio_id, pid, email in people
    ]
    return 200, page_of(rows, req, "cio_relationships", PAGE)


@route("GET", "/v1/customers/{customer_id}/relationships", APP, mutating=False)
def customer_relationships(state: State, req: Req) -> tuple[int, Any]:
    pk = lookup_person(state, req)
    related = state.store.db.execute(
        "SELECT type_id, object_id, attributes FROM relationships WHERE pk=?"
        " ORDER BY type_id, object_id",
        (pk,),
    ).fetchall()
    rows = [
        {
            "object_type_id": int(type_id) if type_id.isdigit() else type_id,
            "identifiers": {
                "object_id": object_id,
                "cio_object_id": cio_object_id(type_id, object_id),
            },
            "attributes": {k: _text(v) for k, v in json.loads(attrs).items()},
            "timestamps": dict.fromkeys(json.loads(attrs), 0),
        }
        for type_id, object_id, attrs in related
    ]
    return 200, page_of(rows, req, "cio_relationships", PAGE)


def _matches(flt: Any, attrs: dict[str, Any]) -> bool:
    if not isinstance(flt, dict) or len(flt) != 1:
        return False
    ((kind, value),) = flt.items()
    if kind == "and":
        return isinstance(value, list) and all(_matches(f, attrs) for f in value)
    if kind == "or":
        return isinstance(value, list) and any(_matches(f, attrs) for f in value)
    if kind == "not":
        return not _matches(value, attrs)
    if kind != "object_attribute" or not isinstance(value, dict):
        return False
    field, operator = value.get("field"), value.get("operator")
    if field not in attrs:
        return False
    if operator == "exists":
        return True
    if operator == "eq":
        return _text(attrs[field]) == _text(value.get("value"))
    if operator == "contains":
        return str(value.get("value")) in _text(attrs[field])
    return False


@route("POST", "/v1/objects", APP, mutating=False)
def search_objects(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    type_id = str(body.get("object_type_id") or "")
    flt = body.get("filter")
    found = [
        object_id
        for object_id, attrs in state.store.db.execute(
            "SELECT object_id, attributes FROM objects WHERE type_id=? ORDER BY object_id",
            (type_id,),
        )
        if flt is None or _matches(flt, json.loads(attrs))
    ]
    page = page_of(found, req, "ids", PAGE)
    page["identifiers"] = [
        {"object_id": o, "cio_object_id": cio_object_id(type_id, o)} for o in page["ids"]
    ]
    return 200, page


ROUTES = collect(globals())
