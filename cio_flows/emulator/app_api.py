"""App API reads and segment management: /v1/customers..., /v1/segments...
(Per-person messages and activities live in messages.py, broadcasts in broadcasts.py.)

Errors are `{"errors": [{"detail", "status"}]}`. Cursors are opaque (base64 of a position); the
last page answers `next: ""`. Lists are ordered by creation, so cursors survive new writes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .core import APP, ApiError, Req, collect, require_object, route
from .filters import FilterError
from .state import State
from .store import CIO_ID, EMAIL, ID

SEARCH_LIMIT = (50, 1000)
MEMBERSHIP_LIMIT = (50, 30000)
ID_TYPES = (ID, EMAIL, CIO_ID)


# -- paging ---------------------------------------------------------------------------------


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"cio:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == "cio" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(400, "invalid 'start' cursor")


def page_limit(req: Req, bounds: tuple[int, int]) -> int:
    raw = req.query.get("limit")
    if raw in (None, ""):
        return bounds[0]
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, "'limit' must be a positive integer")
    return min(int(raw), bounds[1])


def identifiers(row: tuple) -> dict[str, Any]:
    _, id_, email, cio_id = row
    return {"id": id_, "email": email, "cio_id": cio_id}


def people_page(state: State, req: Req, condition: tuple[str, list], bounds) -> dict[str, Any]:
    """identifiers / ids / next for people matching a SQL condition, keyset-paged by pk."""
    sql, args = condition
    limit = page_limit(req, bounds)
    after = decode_cursor(req.query.get("start"))
    rows = state.store.db.execute(
        f"SELECT p.pk, p.id, p.email, p.cio_id FROM people p WHERE p.pk > ? AND {sql} "
        "ORDER BY p.pk LIMIT ?",
        [after, *args, limit + 1],
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "identifiers": [identifiers(r) for r in rows],
        "ids": [r[1] or "" for r in rows],
        "next": encode_cursor(rows[-1][0]) if more else "",
    }


# -- people ---------------------------------------------------------------------------------


@route("POST", "/v1/customers", APP, mutating=False)
def search(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    if "filter" not in body:
        raise ApiError(400, "'filter' is required")
    try:
        condition = state.segments.condition(body["filter"])
    except FilterError as exc:
        raise ApiError(400, f"invalid filter: {exc}") from None
    return 200, people_page(state, req, condition, SEARCH_LIMIT)


@route("GET", "/v1/customers", APP, mutating=False)
def by_email(state: State, req: Req) -> tuple[int, Any]:
    email = req.query.get("email")
    if not email:
        raise ApiError(400, "'email' query parameter is required")
    rows = state.store.db.execute(
        "SELECT pk, id, email, cio_id FROM people WHERE email=? ORDER BY pk", (email,)
    ).fetchall()
    return 200, {"results": [{"email": r[2], "id": r[1], "cio_id": r[3]} for r in rows]}


def lookup_person(state: State, req: Req) -> int:
    """The person a `/v1/customers/{customer_id}/...` path names (by `id_type`), or 404."""
    id_type = req.query.get("id_type") or ID
    if id_type not in ID_TYPES:
        raise ApiError(400, "id_type must be id, email or cio_id")
    pk = state.store.find(id_type, req.params["customer_id"])
    if pk is None:
        raise ApiError(404, "customer not found")
    return pk


def customer_view(state: State, pk: int) -> dict[str, Any]:
    """The App API's attributes view: every value a string, timestamps per attribute."""
    person = state.store.known_person(pk)
    created = person["created_at"]
    attrs: dict[str, Any] = {"_created_in_customerio_at": str(created), "cio_id": person["cio_id"]}
    stamps: dict[str, Any] = {"_created_in_customerio_at": created, "cio_id": created}
    for key in ("id", "email"):
        if person[key] is not None:
            attrs[key] = person[key]
            stamps[key] = created
    unsubscribed = False
    for name, value, text, ts in state.store.attributes(pk):
        attrs[name] = text
        stamps[name] = ts
        if name == "unsubscribed":
            unsubscribed = value is True or text == "true"
    devices = [
        {
            "id": d["id"],
            "platform": d["platform"],
            "last_used": d["last_used"],
            "attributes": d["attributes"],
        }
        for d in state.store.devices(pk)
    ]
    return {
        "id": person["id"],
        "identifiers": {"id": person["id"], "email": person["email"], "cio_id": person["cio_id"]},
        "attributes": attrs,
        "timestamps": stamps,
        "unsubscribed": unsubscribed,
        "devices": devices,
    }


@route("GET", "/v1/customers/{customer_id}/attributes", APP, mutating=False)
def attributes(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"customer": customer_view(state, lookup_person(state, req))}


@route("POST", "/v1/customers/attributes", APP, mutating=False)
def attributes_many(state: State, req: Req) -> tuple[int, Any]:
    id_type = req.query.get("id_type") or ID
    if id_type not in ID_TYPES:
        raise ApiError(400, "id_type must be id, email or cio_id")
    ids = require_object(req.body).get("ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise ApiError(400, "'ids' must be a list of 1 to 100 identifiers")
    out = []
    for value in ids:
        pk = state.store.find(id_type, str(value)) if isinstance(value, str | int) else None
        if pk is not None:  # unknown ids are left out
            out.append({"customer": customer_view(state, pk)})
    return 200, {"customers": out}


@route("GET", "/v1/customers/{customer_id}/segments", APP, mutating=False)
def customer_segments(state: State, req: Req) -> tuple[int, Any]:
    pk = lookup_person(state, req)
    out = []
    for seg in segment_rows(state):
        sql, args = state.segments.segment_condition(seg["id"])
        hit = state.store.db.execute(
            f"SELECT 1 FROM people p WHERE p.pk=? AND {sql}", [pk, *args]
        ).fetchone()
        if hit:
            out.append(seg)
    return 200, {"segments": out}


# -- segments -------------------------------------------------------------------------------


def segment_rows(state: State, seg_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, name, description, type, tags, created_at, updated_at FROM segments"
    rows = state.store.db.execute(
        sql + (" WHERE id=?" if seg_id is not None else " ORDER BY id"),
        (seg_id,) if seg_id is not None else (),
    ).fetchall()
    return [
        {
            "id": r[0],
            "deduplicate_id": f"{r[0]}:{r[6]}",
            "name": r[1],
            "description": r[2],
            "state": "finished",
            "progress": None,
            "type": r[3],
            "tags": json.loads(r[4]) if r[4] else None,
            "created_at": r[5],
            "updated_at": r[6],
        }
        for r in rows
    ]


def _segment_id(req: Req) -> int:
    raw = req.params["segment_id"]
    if not raw.isdigit():
        raise ApiError(404, "segment not found")
    return int(raw)


def _segment(state: State, req: Req) -> dict[str, Any]:
    rows = segment_rows(state, _segment_id(req))
    if not rows:
        raise ApiError(404, "segment not found")
    return rows[0]


@route("GET", "/v1/segments", APP, mutating=False)
def list_segments(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"segments": segment_rows(state)}


@route("POST", "/v1/segments", APP)
def create_segment(state: State, req: Req) -> tuple[int, Any]:
    seg = require_object(req.body).get("segment")
    if not isinstance(seg, dict) or not isinstance(seg.get("name"), str) or not seg["name"]:
        raise ApiError(400, "'segment.name' is required")
    description = seg.get("description") or ""
    if not isinstance(description, str):
        raise ApiError(400, "'segment.description' must be a string")
    ts = state.clock.ts()
    seg_id = state.store.db.execute(
        "INSERT INTO segments(name, description, type, filter, tags, created_at, updated_at)"
        " VALUES(?,?,?,?,?,?,?)",
        (seg["name"], description, "manual", None, None, ts, ts),
    ).lastrowid
    return 200, {"segment": segment_rows(state, seg_id)[0]}


@route("GET", "/v1/segments/{segment_id}", APP, mutating=False)
def get_segment(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"segment": _segment(state, req)}


@route("DELETE", "/v1/segments/{segment_id}", APP)
def delete_segment(state: State, req: Req) -> tuple[int, Any]:
    """204 with no body; manual segments only (data-driven ones are changed in the UI)."""
    seg = _segment(state, req)
    if seg["type"] != "manual":
        raise ApiError(400, "only manual segments can be deleted through the API")
    state.store.db.execute("DELETE FROM segment_members WHERE segment_id=?", (seg["id"],))
    state.store.db.execute("DELETE FROM segments WHERE id=?", (seg["id"],))
    return 204, None


@route("GET", "/v1/segments/{segment_id}/customer_count", APP, mutating=False)
def customer_count(state: State, req: Req) -> tuple[int, Any]:
    seg = _segment(state, req)
    sql, args = state.segments.segment_condition(seg["id"])
    count = state.store.db.execute(f"SELECT COUNT(*) FROM people p WHERE {sql}", args).fetchone()
    return 200, {"segment_id": seg["id"], "count": count[0]}


@route("GET", "/v1/segments/{segment_id}/membership", APP, mutating=False)
def membership(state: State, req: Req) -> tuple[int, Any]:
    seg = _segment(state, req)
    condition = state.segments.segment_condition(seg["id"])
    return 200, people_page(state, req, condition, MEMBERSHIP_LIMIT)


ROUTES = collect(globals())
