"""API-triggered broadcasts: POST /v1/campaigns/{id}/triggers, its status and errors, and
GET /v1/broadcasts/{id}/triggers.

Broadcasts come from the workspace file (`broadcasts: [{id, name, channel, segment, subject}]`).
A trigger answers `{"id": N}` at once; it is processed `DeliveryTiming.trigger` seconds later:
then `processed_at` is set, one message per recipient appears (with the usual lifecycle, see
messages.py) and the errors list fills. Audience: at most one of `ids`, `emails`,
`per_user_data`, `recipients` (a filter), `data_file_url`; none means the broadcast's own
segment (or everyone, if it names none). Unknown ids or emails are errors ("line <index>: message",
index into the list) unless `id_ignore_missing` / `email_ignore_missing`; an email shared by
several people is an error unless `email_add_duplicates`. The emulator never downloads a
`data_file_url`: such a trigger has no recipients and one error saying so.
With limits on, triggers have their own bucket (1 per 10 s) and at most 5 may wait unprocessed.
"""

from __future__ import annotations

import json
from typing import Any

from .config import TRIGGERS
from .core import APP, ApiError, Req, collect, require_object, route
from .filters import FilterError
from .liquid_render import context_for, render_message
from .messages import plan
from .records import dumps
from .sends import new_delivery_id
from .state import State

SELECTORS = ("ids", "emails", "per_user_data", "recipients", "data_file_url")
FLAGS = ("id_ignore_missing", "email_ignore_missing", "email_add_duplicates")
MAX_LIST = 10_000
MAX_DATA = 50_000
MAX_QUEUED = 5
ERRORS_LIMIT = (100, 1000)


def _int_path(req: Req, name: str, what: str) -> int:
    raw = req.params[name]
    if not raw.isdigit():
        raise ApiError(404, f"{what} not found")
    return int(raw)


def broadcast_row(state: State, broadcast_id: int) -> dict[str, Any]:
    row = state.store.db.execute(
        "SELECT id, name, channel, segment_id, subject FROM broadcasts WHERE id=?",
        (broadcast_id,),
    ).fetchone()
    if row is None:
        raise ApiError(404, "broadcast not found")
    return dict(zip(("id", "name", "channel", "segment_id", "subject"), row, strict=True))


def _check(body: dict[str, Any]) -> str | None:
    """Validate the trigger body; returns the audience selector in use (or None)."""
    used = [k for k in SELECTORS if body.get(k) is not None]
    if len(used) > 1:
        raise ApiError(422, f"use only one audience selector, not {' and '.join(used)}")
    data = body.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise ApiError(400, "'data' must be an object")
        if len(dumps(data).encode()) > MAX_DATA:
            raise ApiError(400, f"'data' exceeds {MAX_DATA} bytes")
    for flag in FLAGS:
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise ApiError(400, f"'{flag}' must be a boolean")
    selector = used[0] if used else None
    value = body.get(selector) if selector else None
    if selector in ("ids", "emails", "per_user_data"):
        if not isinstance(value, list) or not value:
            raise ApiError(400, f"'{selector}' must be a non-empty list")
        if len(value) > MAX_LIST:
            raise ApiError(400, f"'{selector}' holds more than {MAX_LIST} entries")
        for i, item in enumerate(value):
            if selector == "per_user_data":
                if not isinstance(item, dict) or not (item.get("id") or item.get("email")):
                    raise ApiError(400, f"per_user_data[{i}] needs an 'id' or an 'email'")
                if item.get("data") is not None and not isinstance(item["data"], dict):
                    raise ApiError(400, f"per_user_data[{i}].data must be an object")
            elif isinstance(item, bool) or not isinstance(item, str | int):
                raise ApiError(400, f"{selector}[{i}] must be a string")
    if selector == "data_file_url" and not isinstance(value, str):
        raise ApiError(400, "'data_file_url' must be a URL")
    if selector == "recipients" and not isinstance(value, dict):
        raise ApiError(400, "'recipients' must be a filter object")
    return selector


def _audience(state: State, b: dict, body: dict, selector: str | None):
    """[(pk, per-person data)] in order, and the error lines."""
    store = state.store
    targets: list[tuple[int, dict]] = []
    errors: list[str] = []

    def by_id(i: int, value: Any, data: dict) -> None:
        pk = store.find("id", str(value))
        if pk is not None:
            targets.append((pk, data))
        elif not body.get("id_ignore_missing"):
            errors.append(f"line {i}: no person with id {str(value)!r}")

    def by_email(i: int, value: Any, data: dict) -> None:
        rows = store.db.execute(
            "SELECT pk FROM people WHERE email=? ORDER BY pk", (str(value),)
        ).fetchall()
        if not rows:
            if not body.get("email_ignore_missing"):
                errors.append(f"line {i}: no person with email {str(value)!r}")
        elif len(rows) > 1 and not body.get("email_add_duplicates"):
            errors.append(f"line {i}: email {str(value)!r} belongs to {len(rows)} people")
        else:
            targets.extend((pk, data) for (pk,) in rows)

    if selector == "ids":
        for i, value in enumerate(body["ids"]):
            by_id(i, value, {})
    elif selector == "emails":
        for i, value in enumerate(body["emails"]):
            by_email(i, value, {})
    elif selector == "per_user_data":
        for i, item in enumerate(body["per_user_data"]):
            find = by_id if item.get("id") else by_email
            find(i, item.get("id") or item.get("email"), item.get("data") or {})
    elif selector == "data_file_url":
        errors.append("line 0: the emulator does not download data files")
    else:
        if selector == "recipients":
            try:
                sql, args = state.segments.condition(body["recipients"])
            except FilterError as exc:
                raise ApiError(400, f"invalid recipients filter: {exc}") from None
        elif b["segment_id"] is not None:
            sql, args = state.segments.segment_condition(b["segment_id"])
        else:
            sql, args = "1=1", []
        rows = store.db.execute(f"SELECT p.pk FROM people p WHERE {sql} ORDER BY p.pk", args)
        targets = [(pk, {}) for (pk,) in rows]
    seen: set[int] = set()
    unique = []
    for pk, data in targets:  # one message per person per trigger
        if pk not in seen:
            seen.add(pk)
            unique.append((pk, data))
    return unique, errors


# The older path customerio-node 4 and earlier clients post to: the same endpoint.
@route("POST", "/v1/api/campaigns/{broadcast_id}/triggers", APP, bucket=TRIGGERS)
@route("POST", "/v1/campaigns/{broadcast_id}/triggers", APP, bucket=TRIGGERS)
def trigger(state: State, req: Req) -> tuple[int, Any]:
    b = broadcast_row(state, _int_path(req, "broadcast_id", "broadcast"))
    body = require_object(req.body)
    selector = _check(body)
    now = state.clock.now()
    db = state.store.db
    if TRIGGERS in state.buckets:
        waiting = db.execute("SELECT COUNT(*) FROM triggers WHERE process_f>?", (now,))
        if waiting.fetchone()[0] >= MAX_QUEUED:
            raise ApiError(429, f"at most {MAX_QUEUED} triggers may wait to be processed")
    targets, errors = _audience(state, b, body, selector)
    processed = now + state.timing.trigger
    trigger_id = db.execute(
        "INSERT INTO triggers(broadcast_id, created_f, process_f, body, recipients_count, errors)"
        " VALUES(?,?,?,?,?,?)",
        (b["id"], now, processed, dumps(body), len(targets), dumps(errors)),
    ).lastrowid
    shared = body.get("data") or {}
    for pk, data in targets:
        person = state.store.known_person(pk)
        recipient, outcome, failure = plan(state.store, b["channel"], pk, None)
        context = context_for(state.store, pk, trigger={**shared, **data})
        rendered = render_message({"subject": b["subject"]}, context)
        if rendered.failure:
            outcome, failure = "failed", rendered.failure
        state.store.add_delivery(
            {
                "id": new_delivery_id(),
                "pk": pk,
                "channel": b["channel"],
                "template_id": None,
                "template": b["name"],
                "identifiers": {k: person[k] for k in ("id", "email", "cio_id") if person[k]},
                "recipient": recipient,
                "subject": rendered.subject,
                "body": {"data": {**shared, **data}},
                "created": int(processed),
                "send_at": None,
                "kind": "broadcast",
                "broadcast_id": b["id"],
                "trigger_id": trigger_id,
                "created_f": processed,
                "start_f": processed,
                "outcome": outcome,
                "failure": failure,
            }
        )
    return 200, {"id": trigger_id}


def trigger_view(row: tuple, at: float) -> dict[str, Any]:
    tid, broadcast_id, created, processed, count, _errors = row
    done = at >= processed
    view = {"id": tid, "broadcast_id": broadcast_id, "created_at": int(created)}
    if done:  # documented as integers: absent until the trigger is processed
        view.update(processed_at=int(processed), recipients_count=count)
    return view


TRIGGER_SQL = (
    "SELECT id, broadcast_id, created_f, process_f, recipients_count, errors FROM triggers"
)


def _trigger(state: State, req: Req) -> tuple:
    broadcast_id = _int_path(req, "broadcast_id", "broadcast")
    trigger_id = _int_path(req, "trigger_id", "trigger")
    row = state.store.db.execute(
        TRIGGER_SQL + " WHERE id=? AND broadcast_id=?", (trigger_id, broadcast_id)
    ).fetchone()
    if row is None:
        raise ApiError(404, "trigger not found")
    return row


@route("GET", "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}", APP, mutating=False)
def trigger_status(state: State, req: Req) -> tuple[int, Any]:
    return 200, trigger_view(_trigger(state, req), state.clock.now())


@route("GET", "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors", APP, mutating=False)
def trigger_errors(state: State, req: Req) -> tuple[int, Any]:
    """{"errors": ["line <index>: message", ...], "next": cursor}; `next` is "" on the last
    page (documented as a string)."""
    row = _trigger(state, req)
    errors = json.loads(row[5]) if state.clock.now() >= row[3] else []
    start, limit = req.query.get("start") or "0", req.query.get("limit") or str(ERRORS_LIMIT[0])
    if not start.isdigit() or not limit.isdigit() or int(limit) < 1:
        raise ApiError(400, "'start' and 'limit' must be non-negative integers")
    first, size = int(start), min(int(limit), ERRORS_LIMIT[1])
    page = errors[first : first + size]
    more = first + size < len(errors)
    return 200, {"errors": page, "next": str(first + size) if more else ""}


@route("GET", "/v1/broadcasts/{broadcast_id}/triggers", APP, mutating=False)
def list_triggers(state: State, req: Req) -> tuple[int, Any]:
    b = broadcast_row(state, _int_path(req, "broadcast_id", "broadcast"))
    rows = state.store.db.execute(TRIGGER_SQL + " WHERE broadcast_id=? ORDER BY id", (b["id"],))
    at = state.clock.now()
    return 200, {"triggers": [trigger_view(r, at) for r in rows]}


ROUTES = collect(globals())
