"""What recipients' devices and pages report back to Track: POST /api/v1/metrics and
/api/v1/push/events (a message metric: opened, clicked, delivered, bounced, ...),
POST /unsubscribe/{delivery_id} (the person unsubscribes, attributed to the message) and
POST /api/v1/forms/{form_id}/submit (a form identifies a person and sets attributes).

The metrics and unsubscribe endpoints take no credentials (app.json: `security: []`): devices
and unsubscribe pages call them. The metrics endpoints document only 200, so a report about no
known message is accepted and changes nothing.
"""

from __future__ import annotations

from typing import Any

from .core import TRACK, ApiError, Req, collect, require_object, route
from .messages import IMPLIED, record_metric
from .state import State
from .store import EMAIL, ID
from .track import check_identifier, unix, upsert


def _report(state: State, delivery_id: Any, metric: Any, timestamp: Any, reason: Any) -> None:
    if not isinstance(delivery_id, str) or metric not in IMPLIED:
        return  # deferred, or nothing the emulator can attribute
    at = unix(timestamp) if timestamp is not None else None
    record_metric(state, delivery_id, metric, at, reason if isinstance(reason, str) else None)


@route("POST", "/api/v1/metrics", TRACK, auth=False)
def metrics(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    _report(
        state,
        body.get("delivery_id"),
        body.get("metric"),
        body.get("timestamp"),
        body.get("reason"),
    )
    return 200, {}


@route("POST", "/api/v1/push/events", TRACK, auth=False)
def push_events(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    _report(state, body.get("delivery_id"), body.get("event"), body.get("timestamp"), None)
    return 200, {}


@route("POST", "/unsubscribe/{delivery_id}", TRACK, auth=False)
def unsubscribe(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    wanted = body.get("unsubscribe", True)
    if not isinstance(wanted, bool):
        raise ApiError(400, "'unsubscribe' must be true or false", field="unsubscribe")
    found = state.store.deliveries(delivery_id=req.params["delivery_id"])
    if not found:
        raise ApiError(400, "no message with this delivery id", field="delivery_id")
    pk = found[0]["pk"]
    if wanted and pk is not None:
        state.store.set_attributes(pk, {"unsubscribed": True})
        record_metric(state, found[0]["id"], "unsubscribed")
    return 200, {}


@route("POST", "/api/v1/forms/{form_id}/submit", TRACK)
def submit_form(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ApiError(400, "'data' must be an object of form fields", field="data")
    given = [k for k in (ID, EMAIL) if data.get(k) not in (None, "")]
    if len(given) != 1:
        raise ApiError(400, "'data' must hold exactly one of id or email", field="data")
    kind = given[0]
    value = check_identifier(str(data[kind]), f"data.{kind}")
    fields = {k: v for k, v in data.items() if k != kind}
    if upsert(state.store, kind, value, fields) is None:
        raise ApiError(400, "the person is suppressed", field=f"data.{kind}")
    return 204, None


ROUTES = collect(globals())
