"""Messages (deliveries) and their lifecycle; App GET /v1/messages, /v1/messages/{id}, and the
per-person read GET /v1/customers/{id}/messages (activities: activities.py); Track's metrics
reports POST /api/v1/metrics and /api/v1/push/events (no auth), recorded by `record_metric`, which
the web page's opened/clicked/bounced buttons also call.

Every send and every broadcast recipient is one row in `deliveries`. Its metrics are derived on
read from the time since it started (see DeliveryTiming), so nothing runs in the background:
`created` at once, then `sent`, then `delivered`. An email address at bounce.example.com gets
`bounced` (and a `failure_message`) instead of `delivered`; a push to a person without devices,
or an SMS/WhatsApp without a number, gets `undeliverable`; `queue_draft` gives `drafted` only.
Metric values are unix times, as Customer.io's are. A broadcast's messages appear once its
trigger is processed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .app_api import decode_cursor, encode_cursor, lookup_person
from .core import APP, TRACK, ApiError, Req, collect, require_object, route
from .state import State
from .store import Store

BOUNCE_DOMAIN = "bounce.example.com"
# The App API's message `type` per send channel (SMS goes out through Twilio).
MESSAGE_TYPE = {
    "email": "email",
    "push": "push",
    "sms": "twilio",
    "whatsapp": "whatsapp",
    "in_app": "in_app",
    "inbox_message": "inbox",
}
TYPES = ("email", "webhook", "twilio", "whatsapp", "slack", "push", "in_app", "live_notification")
# What happened to a message after it left, in lifecycle order (delivery exports' columns too).
OUTCOME_METRICS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "bounced",
    "spammed",
    "unsubscribed",
    "dropped",
    "failed",
    "undeliverable",
)
METRICS = ("attempted", *OUTCOME_METRICS)  # what GET /v1/messages filters on
MESSAGES_LIMIT = (50, 1000)
ACTIVITY_LIMIT = (10, 100)
SIX_MONTHS = 183 * 86400


# -- planning a message ---------------------------------------------------------------------


def plan(
    store: Store, channel: str, pk: int | None, to: str | None, *, draft: bool = False
) -> tuple[str, str, str | None]:
    """(recipient, outcome, failure_message) of a message about to be recorded."""
    if draft:
        return to or "", "drafted", None
    if channel == "email":
        email = to or (_person_email(store, pk) if pk is not None else None)
        if not email:
            return "", "undeliverable", "the person has no email address"
        for address in email.split(","):
            domain = address.strip().rstrip(">").rpartition("@")[2].lower()
            if domain == BOUNCE_DOMAIN:
                failure = f"550 5.1.1 <{address.strip()}>: mailbox unavailable (hard bounce)"
                return email, "bounced", failure
        return email, "delivered", None
    if channel == "push":
        if to and to not in ("all", "last_used"):
            return to, "delivered", None
        devices = sorted(store.devices(pk) if pk is not None else [], key=_last_used)
        if not devices:
            return "", "undeliverable", "the person has no devices"
        return devices[-1]["id"], "delivered", None
    if channel in ("sms", "whatsapp"):
        phone = to or (_attribute(store, pk, "phone") if pk is not None else None)
        if not phone:
            return "", "undeliverable", "the person has no phone number"
        return phone, "delivered", None
    person = store.person(pk) if pk is not None else None
    return to or (person and (person["id"] or person["cio_id"])) or "", "delivered", None


def _last_used(device: dict[str, Any]) -> int:
    return device["last_used"] or 0


def _person_email(store: Store, pk: int) -> str | None:
    person = store.person(pk)
    return person["email"] if person else None


def _attribute(store: Store, pk: int, name: str) -> str | None:
    row = store.db.execute("SELECT str FROM attrs WHERE pk=? AND name=?", (pk, name)).fetchone()
    return row[0] if row else None


# -- the lifecycle, derived on read ---------------------------------------------------------


def lifecycle(state: State, d: dict[str, Any], at: float) -> tuple[dict[str, int], str | None]:
    """(metrics, failure_message) of a delivery as of time `at`."""
    created = int(d["created_f"])
    metrics = {"created": created}
    if d.get("metrics"):  # a message with a recorded history (the generated demo's)
        metrics.update((k, ts) for k, ts in d["metrics"].items() if ts <= at)
        return metrics, d["failure"]
    outcome = d["outcome"]
    if outcome == "drafted":
        metrics["drafted"] = created
        return metrics, None
    timing = state.timing
    start = d["start_f"]
    if at < start + timing.sent:
        return metrics, None
    # failed: e.g. its template did not render or the person unsubscribed; dropped: the
    # address is on an ESP suppression list. Neither was sent.
    if outcome in ("undeliverable", "failed", "dropped"):
        metrics[outcome] = int(start + timing.sent)
        return metrics, d["failure"]
    metrics["sent"] = int(start + timing.sent)
    if at < start + timing.delivered:
        return metrics, None
    metrics[outcome] = int(start + timing.delivered)
    return metrics, d["failure"] if outcome == "bounced" else None


# What a recipient's client can report, and the steps each implies happened first.
IMPLIED = {
    "delivered": ("sent",),
    "opened": ("sent", "delivered"),
    "clicked": ("sent", "delivered", "opened"),
    "converted": ("sent", "delivered"),
    "spammed": ("sent", "delivered"),
    "unsubscribed": ("sent", "delivered"),
    "bounced": ("sent",),
    "dropped": (),
}


def record_metric(
    state: State, delivery_id: str, metric: str, at: float | None = None, reason: str | None = None
) -> bool:
    """Record a metric reported for a message at `at` (default now): what Track's metrics
    reports and the web page's opened/clicked/bounced buttons do. False when there is no such
    message.

    The lifecycle so far becomes the message's recorded history, with the steps the metric
    implies (an open was delivered first); a bounce replaces `delivered`.
    """
    if metric not in IMPLIED:
        raise ValueError(f"cannot record metric {metric!r}")
    found = state.store.deliveries(delivery_id=delivery_id)
    now = state.clock.now()
    if not found or not visible(found[0], now):
        return False
    metrics, failure = lifecycle(state, found[0], now)
    stamp = int(now if at is None else at)  # a report may say when it happened
    for step in IMPLIED[metric]:
        metrics.setdefault(step, stamp)
    if metric in ("bounced", "dropped"):
        metrics.pop("delivered", None)
        failure = reason or failure or f"{metric} (reported)"
    metrics.setdefault(metric, stamp)
    state.store.db.execute(
        "UPDATE deliveries SET metrics=?, failure=? WHERE delivery_id=?",
        (json.dumps(metrics), failure, delivery_id),
    )
    state.changed()
    return True


# Documented as integers, never null: left out when the message has none (a transactional
# send has no campaign, a campaign message no newsletter).
ABSENT_WHEN_NONE = (
    "campaign_id",
    "action_id",
    "parent_action_id",
    "newsletter_id",
    "content_id",
    "broadcast_id",
    "trigger_event_id",
)


def message_view(state: State, d: dict[str, Any], at: float) -> dict[str, Any]:
    """A delivery as the App API's message object."""
    view = _message_fields(state, d, at)
    for key in ABSENT_WHEN_NONE:
        if view.get(key) is None:
            view.pop(key, None)
    return view


def _message_fields(state: State, d: dict[str, Any], at: float) -> dict[str, Any]:
    metrics, failure = lifecycle(state, d, at)
    person = state.store.person(d["pk"]) if d["pk"] is not None else None
    if person is not None:
        ident = {k: person[k] for k in ("id", "email", "cio_id")}
    else:
        ident = {k: d["identifiers"].get(k) for k in ("id", "email", "cio_id")}
    created = int(d["created_f"])
    return {
        "id": d["id"],
        "deduplicate_id": f"{d['id']}:{created}",
        "message_template_id": d["template_id"],
        "msg_template_id": d["template_id"],
        # A transactional send's template as the send named it (id or trigger name): what
        # a resume matches an unknown send on (run/settle.py). None for campaigns, broadcasts.
        "transactional_message_id": d.get("template"),
        "customer_id": ident["id"],
        "customer_identifiers": ident,
        "recipient": d["recipient"] or "",
        "subject": d["subject"] or "",
        "metrics": metrics,
        "created": created,
        "failure_message": failure,
        "campaign_id": d.get("campaign_id"),
        "action_id": d.get("action_id"),
        "parent_action_id": None,
        "newsletter_id": d.get("newsletter_id"),
        "content_id": None,
        "broadcast_id": d["broadcast_id"],
        "trigger_event_id": None,
        "type": MESSAGE_TYPE.get(d["channel"], d["channel"]),
        "forgotten": bool(
            isinstance(d["body"], dict) and d["body"].get("disable_message_retention")
        ),
    }


def visible(d: dict[str, Any], at: float) -> bool:
    """A broadcast's messages exist once its trigger is processed."""
    return d["created_f"] <= at


# -- query helpers ---------------------------------------------------------------------------


def _int_param(req: Req, name: str) -> int | None:
    raw = req.query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be an integer") from None
    if not -(2**62) <= value <= 2**62:  # SQLite holds 64 bits; the window adds to it
        raise ApiError(400, f"'{name}' is out of range")
    return value


def page_limit(req: Req, bounds: tuple[int, int]) -> int:
    raw = req.query.get("limit")
    if raw in (None, ""):
        return bounds[0]
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, "'limit' must be a positive integer")
    return min(int(raw), bounds[1])


def _window(req: Req, at: float) -> tuple[int, int]:
    """start_ts/end_ts on creation time; without them the last 6 months."""
    end = _int_param(req, "end_ts")
    start = _int_param(req, "start_ts")
    end = int(at) + 1 if end is None else end
    start = end - SIX_MONTHS if start is None else start
    if start > end:
        raise ApiError(400, "'start_ts' must not be after 'end_ts'")
    return start, end


def page_of(rows: list[Any], req: Req, key: str, bounds, view=None) -> dict[str, Any]:
    """Offset cursor over a list already in answer order (newest first); `view` turns the
    page's rows (only those) into what the answer shows."""
    limit = page_limit(req, bounds)
    offset = decode_cursor(req.query.get("start"))
    chunk = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return {
        key: view(chunk) if view else chunk,
        "next": encode_cursor(offset + limit) if more else "",
    }


# Channels per App API message type, so a `type` filter runs in SQL.
CHANNELS_OF = {t: [c for c, m in MESSAGE_TYPE.items() if m == t] or [t] for t in (*TYPES, "inbox")}
CANDIDATE_SQL = (
    "SELECT seq, created_f, start_f, outcome, failure, metrics FROM deliveries WHERE "
    "COALESCE(created_f, queued_at) BETWEEN ? AND ?"
)


def filtered_messages(
    state: State, req: Req, pk: int | None, before: int | None = None, limit: int | None = None
) -> list[int]:
    """Delivery keys (seq) newest first, after the documented filters (and `broadcast_id`):
    those below `before` (a page's cursor), the first `limit` of them when given; `views` turns
    a page of them into message objects."""
    at = state.clock.now()
    wanted_type = req.query.get("type")
    if wanted_type and wanted_type not in TYPES and wanted_type != "inbox":
        raise ApiError(400, f"'type' must be one of {', '.join(TYPES)}")
    metric = req.query.get("metric")
    if metric and metric not in METRICS and metric not in ("created", "drafted"):
        raise ApiError(400, f"'metric' must be one of {', '.join(METRICS)}")
    drafts = (req.query.get("drafts") or "").lower() in ("true", "1")
    # campaign_id matches a campaign's and a broadcast's messages: the trigger path calls
    # broadcasts campaigns, and the two share one id space.
    campaign = _int_param(req, "campaign_id")
    broadcast = _int_param(req, "broadcast_id")
    newsletter = _int_param(req, "newsletter_id")
    action = _int_param(req, "action_id")
    start, end = _window(req, at)
    args: list[Any]
    sql, args = CANDIDATE_SQL, [start, end + 0.999]
    if pk is not None:
        sql, args = sql + " AND pk=?", [*args, pk]
    sql += " AND (outcome='drafted')=?"
    args.append(1 if drafts else 0)
    if campaign is not None:
        sql, args = sql + " AND (campaign_id=? OR broadcast_id=?)", [*args, campaign, campaign]
    for column, value in (("broadcast_id", broadcast), ("newsletter_id", newsletter)):
        if value is not None:
            sql, args = sql + f" AND {column}=?", [*args, value]
    if action is not None:
        sql, args = sql + " AND action_id=?", [*args, action]
    if wanted_type:
        channels = CHANNELS_OF[wanted_type]
        sql += f" AND channel IN ({','.join('?' * len(channels))})"
        args.extend(channels)
    if before is not None:
        sql, args = sql + " AND seq<?", [*args, before]
    out: list[int] = []
    for seq, created_f, start_f, outcome, failure, fixed in state.store.db.execute(
        sql + " ORDER BY seq DESC", args
    ):
        if created_f is not None and created_f > at:
            continue  # a broadcast's messages exist once its trigger is processed
        if metric:
            d = {"created_f": created_f, "start_f": start_f, "outcome": outcome}
            d.update(failure=failure, metrics=json.loads(fixed) if fixed else None)
            if metric not in lifecycle(state, d, at)[0]:
                continue
        out.append(seq)
        if limit is not None and len(out) >= limit:
            break  # rows come newest first from SQL: the rest are not read
    return out


def message_page(
    state: State, req: Req, pk: int | None, view: Callable[[list[int]], list[dict[str, Any]]]
) -> dict[str, Any]:
    """One page of messages by key: the `start` cursor is the last message shown (its seq), so
    a page reads only as many rows as it shows, however deep it is."""
    start = req.query.get("start")
    before = decode_cursor(start) if start else None
    limit = page_limit(req, MESSAGES_LIMIT)
    seqs = filtered_messages(state, req, pk, before, limit + 1)
    shown = seqs[:limit]
    return {"messages": view(shown), "next": encode_cursor(shown[-1]) if len(seqs) > limit else ""}


def views(state: State, seqs: list[int]) -> list[dict[str, Any]]:
    """Message objects for delivery keys, in the given order."""
    at = state.clock.now()
    by_seq = {d["seq"]: d for d in state.store.deliveries(seqs=seqs)} if seqs else {}
    return [message_view(state, by_seq[s], at) for s in seqs]


# -- endpoints -------------------------------------------------------------------------------


@route("GET", "/v1/messages", APP, mutating=False)
def list_messages(state: State, req: Req) -> tuple[int, Any]:
    return 200, message_page(state, req, None, lambda seqs: views(state, seqs))


@route("GET", "/v1/messages/{message_id}", APP, mutating=False)
def get_message(state: State, req: Req) -> tuple[int, Any]:
    at = state.clock.now()
    rows = state.store.deliveries(delivery_id=req.params["message_id"])
    if not rows or not visible(rows[0], at):
        raise ApiError(404, "message not found")
    return 200, {"message": message_view(state, rows[0], at)}


@route("GET", "/v1/messages/{message_id}/archived_message", APP, mutating=False)
def archived_message(state: State, req: Req) -> tuple[int, Any]:
    """The message as it went out: its rendered body and subject, sender and recipient."""
    at = state.clock.now()
    rows = state.store.deliveries(delivery_id=req.params["message_id"])
    if not rows or not visible(rows[0], at):
        raise ApiError(404, "message not found")
    d = rows[0]
    sent = d["body"] if isinstance(d["body"], dict) else {}
    forgotten = sent.get("disable_message_retention") is True
    archived: dict[str, Any] = {
        "id": d["id"],
        "body": "" if forgotten else (d.get("content") or _text(sent.get("body"))),
        "recipient": d["recipient"] or "",
        "subject": d["subject"] or "",
        "forgotten": forgotten,
    }
    for key in ("from", "reply_to", "bcc", "preheader_text"):
        if isinstance(sent.get(key), str):
            archived[key] = sent[key]
    return 200, {"archived_message": archived}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@route("GET", "/v1/customers/{customer_id}/messages", APP, mutating=False)
def customer_messages(state: State, req: Req) -> tuple[int, Any]:
    pk = lookup_person(state, req)
    return 200, message_page(state, req, pk, lambda seqs: _per_person(state, seqs))


def _per_person(state: State, seqs: list[int]) -> list[dict[str, Any]]:
    """The per-person read documents `msg_template_id` as a string (the workspace-wide read
    as an integer): each answers as its own document says."""
    out = views(state, seqs)
    for view in out:
        if view.get("msg_template_id") is not None:
            view["msg_template_id"] = str(view["msg_template_id"])
    return out


# Track's metrics reports: what each accepts besides IMPLIED's metrics (`deferred` is a
# delay, not a step of the lifecycle, so it is accepted and changes nothing).
REPORTED_METRICS = (*IMPLIED, "deferred")
PUSH_EVENTS = ("opened", "converted", "delivered")


def _report(
    state: State, body: Any, key: str, allowed: tuple[str, ...], *, required: bool = True
) -> tuple[int, Any]:
    body = require_object(body)
    delivery_id, metric = body.get("delivery_id"), body.get(key)
    if not required and (delivery_id is None or metric is None):
        return 200, {}  # push events document no required field: nothing to record
    if not isinstance(delivery_id, str) or not delivery_id:
        raise ApiError(400, "'delivery_id' is required", field="delivery_id")
    if metric not in allowed:
        raise ApiError(400, f"'{key}' must be one of {', '.join(allowed)}", field=key)
    at = body.get("timestamp")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        raise ApiError(400, "'timestamp' must be a unix timestamp", field="timestamp")
    reason = body.get("reason") if isinstance(body.get("reason"), str) else None
    if metric != "deferred":
        # An unknown delivery id is accepted and changes nothing, as fire-and-forget reports are.
        record_metric(state, delivery_id, metric, at, reason)
    return 200, {}


@route("POST", "/api/v1/metrics", TRACK, auth=False)
def report_metric(state: State, req: Req) -> tuple[int, Any]:
    return _report(state, req.body, "metric", REPORTED_METRICS)


@route("POST", "/api/v1/push/events", TRACK, auth=False)
def report_push_event(state: State, req: Req) -> tuple[int, Any]:
    return _report(state, req.body, "event", PUSH_EVENTS, required=False)


ROUTES = collect(globals())
