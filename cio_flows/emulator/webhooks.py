"""Reporting webhooks: the App API's CRUD at /v1/reporting_webhooks, and the events themselves.

Every message metric a message reaches (sent, delivered, bounced, dropped, failed, opened, ...)
and every subscribe/unsubscribe (a person's `unsubscribed` attribute turning false/true) is
POSTed to each enabled webhook whose `events` ask for it (`email_sent`, `customer_unsubscribed`,
...), in the body reporting_webhooks.json describes, with
  X-CIO-Timestamp: <unix seconds>
  X-CIO-Signature: hex HMAC-SHA256(signing key, "v0:<timestamp>:<body>")
The signing key is the workspace's: CUSTOMERIO_WEBHOOK_SIGNING_KEY, else the demo key below.

Metrics are derived on read (messages.py), so a ticker on the server's event loop looks every
TICK seconds at the messages recorded since the webhooks were first read and emits what each
newly reached. Each webhook has one queue, posted in order from a worker thread; an answer other
than 2xx (or no answer) is retried after RETRY_DELAYS, then dropped and noted in the outbox log
(`GET /_emulator/webhooks`). Only messages created while the emulator runs are reported, never
the workspace's history.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import APP, ApiError, Req, collect, require_object, route
from .messages import lifecycle, visible
from .state import State

log = logging.getLogger("cio_flows.emulator")

SIGNING_KEY_ENV = "CUSTOMERIO_WEBHOOK_SIGNING_KEY"
DEMO_SIGNING_KEY = "emulator-webhook-signing-key"
TICK = 0.2
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # after the first attempt, then the event is dropped
POST_TIMEOUT = 10.0
FOLLOW_FOR = 3600.0  # seconds a message is watched for new metrics after it was created
MAX_WATCHED = 20_000
OUTBOX_LOG = 1000

# The event names a webhook may ask for (app.json's enum), per object type.
EVENTS = (
    "customer_subscribed",
    "customer_unsubscribed",
    "customer_subscription_preferences_changed",
    *(
        f"email_{m}"
        for m in [
            "drafted",
            "attempted",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "converted",
            "bounced",
            "dropped",
            "deferred",
            "spammed",
            "failed",
            "unsubscribed",
            "undeliverable",
        ]
    ),
    *(
        f"push_{m}"
        for m in [
            "drafted",
            "attempted",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "converted",
            "bounced",
            "dropped",
            "failed",
            "undeliverable",
        ]
    ),
    *(f"slack_{m}" for m in ["drafted", "attempted", "sent", "clicked", "converted", "failed"]),
    *(
        f"sms_{m}"
        for m in [
            "drafted",
            "attempted",
            "sent",
            "delivered",
            "clicked",
            "converted",
            "bounced",
            "failed",
            "undeliverable",
        ]
    ),
    *(
        f"webhook_{m}"
        for m in ["drafted", "attempted", "sent", "clicked", "converted", "failed", "undeliverable"]
    ),
)
# A message's channel as a webhook event's object_type (channels without one are not reported).
OBJECT_TYPE = {"email": "email", "push": "push", "sms": "sms"}
FIELDS = ("name", "endpoint", "disabled", "full_resolution", "with_content", "events")


def signing_key() -> str:
    return os.environ.get(SIGNING_KEY_ENV) or DEMO_SIGNING_KEY


def signature(key: str, timestamp: int, body: bytes) -> str:
    """What X-CIO-Signature holds: hex HMAC-SHA256 of `v0:<timestamp>:<body>`."""
    message = f"v0:{timestamp}:".encode() + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


# -- CRUD -------------------------------------------------------------------------------------


def _validated(body: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    body = require_object(body)
    hook = dict(current or {"disabled": False, "full_resolution": False, "with_content": False})
    for key in FIELDS:
        if key in body:
            hook[key] = body[key]
    for key in ("name", "endpoint", "events"):
        if key not in hook:
            raise ApiError(400, f"'{key}' is required", field=key)
    if not isinstance(hook["name"], str) or not hook["name"].strip():
        raise ApiError(400, "'name' must be a non-empty string", field="name")
    endpoint = hook["endpoint"]
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "'endpoint' must be an http(s) URL", field="endpoint")
    events = hook["events"]
    if not isinstance(events, list) or not events:
        raise ApiError(400, "'events' must be a non-empty list", field="events")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ApiError(400, f"unknown events: {', '.join(map(str, unknown))}", field="events")
    for key in ("disabled", "full_resolution", "with_content"):
        if not isinstance(hook[key], bool):
            raise ApiError(400, f"'{key}' must be true or false", field=key)
    return {k: hook[k] for k in FIELDS}


def _hooks(state: State) -> list[dict[str, Any]]:
    rows = state.store.db.execute("SELECT id, body FROM reporting_webhooks ORDER BY id")
    return [{"id": hid, **json.loads(body)} for hid, body in rows]


def _hook(state: State, req: Req) -> dict[str, Any]:
    raw = req.params["webhook_id"]
    row = (
        state.store.db.execute(
            "SELECT id, body FROM reporting_webhooks WHERE id=?", (int(raw),)
        ).fetchone()
        if raw.isdigit()
        else None
    )
    if row is None:
        raise ApiError(404, "reporting webhook not found")
    return {"id": row[0], **json.loads(row[1])}


def add_webhook(state: State, body: dict[str, Any]) -> dict[str, Any]:
    """Create a webhook (the API's POST, and `cio-flows emulator --webhook URL`)."""
    hook = _validated(body)
    hid = state.store.db.execute(
        "INSERT INTO reporting_webhooks(body) VALUES(?)", (json.dumps(hook),)
    ).lastrowid
    return {"id": hid, **hook}


@route("POST", "/v1/reporting_webhooks", APP)
def create_webhook(state: State, req: Req) -> tuple[int, Any]:
    return 200, add_webhook(state, req.body)


@route("GET", "/v1/reporting_webhooks", APP, mutating=False)
def list_webhooks(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"reporting_webhooks": _hooks(state)}


@route("GET", "/v1/reporting_webhooks/{webhook_id}", APP, mutating=False)
def get_webhook(state: State, req: Req) -> tuple[int, Any]:
    return 200, _hook(state, req)


@route("PUT", "/v1/reporting_webhooks/{webhook_id}", APP)
def update_webhook(state: State, req: Req) -> tuple[int, Any]:
    current = _hook(state, req)
    hook = _validated(req.body, current)
    state.store.db.execute(
        "UPDATE reporting_webhooks SET body=? WHERE id=?", (json.dumps(hook), current["id"])
    )
    return 200, {"id": current["id"], **hook}


@route("DELETE", "/v1/reporting_webhooks/{webhook_id}", APP)
def delete_webhook(state: State, req: Req) -> tuple[int, Any]:
    hook = _hook(state, req)
    state.store.db.execute("DELETE FROM reporting_webhooks WHERE id=?", (hook["id"],))
    return 200, {}


ROUTES = collect(globals())


# -- events -----------------------------------------------------------------------------------


def event_id() -> str:
    """26 characters of Crockford-ish base32, like the ULIDs Customer.io sends."""
    stamp = int(time.time() * 1000).to_bytes(6, "big")
    return base64.b32encode(stamp + os.urandom(10)).decode().rstrip("=")[:26]


def _identifiers(state: State, d: dict[str, Any]) -> dict[str, Any]:
    person = state.store.person(d["pk"]) if d["pk"] is not None else None
    if person is not None:
        return {"id": person["id"], "email": person["email"], "cio_id": person["cio_id"]}
    ident = d["identifiers"] or {}
    return {"id": ident.get("id"), "email": ident.get("email") or d["recipient"]}


def _common(state: State, d: dict[str, Any]) -> dict[str, Any]:
    """event_common_data: which program the message came from, and who it went to."""
    identifiers = _identifiers(state, d)
    data: dict[str, Any] = {"delivery_id": d["id"], "identifiers": identifiers}
    if identifiers.get("id") is not None:
        data["customer_id"] = str(identifiers["id"])
    if d["broadcast_id"] is not None:
        data.update(
            broadcast_id=d["broadcast_id"],
            trigger_id=d["trigger_id"] or 0,
            action_id=d["action_id"] or d["broadcast_id"] * 1000 + 1,  # its one action
        )
    elif d["campaign_id"] is not None:
        data.update(campaign_id=d["campaign_id"], action_id=d["action_id"] or 0)
    elif d["newsletter_id"] is not None:
        data["newsletter_id"] = d["newsletter_id"]
    else:
        tid = d["template_id"] if d["template_id"] is not None else d["template"]
        data["transactional_message_id"] = tid if tid is not None else 0
    return data


def message_event(
    state: State, d: dict[str, Any], metric: str, ts: int, failure: str | None, content: bool
) -> dict[str, Any] | None:
    """The event body of message `d` reaching `metric`, or None if none is documented."""
    object_type = OBJECT_TYPE.get(d["channel"])
    if object_type is None or f"{object_type}_{metric}" not in EVENTS:
        return None
    data = _common(state, d)
    reason = failure or f"{metric}"
    if object_type == "email":
        data.update(recipient=d["recipient"] or "", subject=d["subject"] or "")
    elif object_type == "sms":
        data["recipient"] = d["recipient"] or ""
    else:
        device: dict[str, Any] = {"device_id": d["recipient"] or ""}
        platform = _platform(state, d)
        if platform:
            device["device_platform"] = platform
        if metric in ("bounced", "dropped", "failed", "undeliverable", "attempted"):
            device["failure_message"] = reason
        data["recipients"] = [device]
    if metric in ("bounced", "dropped", "failed", "undeliverable", "attempted"):
        data["failure_message"] = reason
    if metric == "sent" and content and d.get("content"):
        data["content"] = d["content"]
    return {
        "event_id": event_id(),
        "object_type": object_type,
        "metric": metric,
        "timestamp": ts,
        "data": data,
    }


def _platform(state: State, d: dict[str, Any]) -> str | None:
    if d["pk"] is None:
        return None
    for device in state.store.devices(d["pk"]):
        if device["id"] == d["recipient"] and device["platform"] in ("ios", "android"):
            return str(device["platform"])
    return None


def customer_event(state: State, pk: int, unsubscribed: bool, ts: int) -> dict[str, Any]:
    person = state.store.person(pk) or {"id": None, "email": None, "cio_id": None}
    identifiers = {"id": person["id"], "email": person["email"], "cio_id": person["cio_id"]}
    return {
        "event_id": event_id(),
        "object_type": "customer",
        "metric": "unsubscribed" if unsubscribed else "subscribed",
        "timestamp": ts,
        "data": {
            "customer_id": person["id"] or "",
            "email_address": person["email"],
            "identifiers": identifiers,
        },
    }


# -- delivery ---------------------------------------------------------------------------------


@dataclass
class Reporter:
    """What one emulator has reported so far, and the queues of events still to post."""

    last_seq: int | None = None
    last_change: int | None = None
    watched: dict[int, set[str]] = field(default_factory=dict)  # seq -> metrics reported
    queues: dict[int, asyncio.Queue] = field(default_factory=dict)
    workers: dict[int, asyncio.Task] = field(default_factory=dict)
    outbox: deque = field(default_factory=lambda: deque(maxlen=OUTBOX_LOG))


_REPORTERS: weakref.WeakKeyDictionary[State, Reporter] = weakref.WeakKeyDictionary()


def reporter(state: State) -> Reporter:
    found = _REPORTERS.get(state)
    if found is None:
        found = _REPORTERS[state] = Reporter()
        state.reset_hooks.append(lambda: start_here(state))
    return found


def start_here(state: State) -> None:
    """Report only what happens from now on (at start, and after each reset)."""
    rep = reporter(state)
    db = state.store.db
    rep.last_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM deliveries").fetchone()[0]
    rep.last_change = db.execute("SELECT COALESCE(MAX(cid), 0) FROM changes").fetchone()[0]
    rep.watched.clear()


def scan(state: State) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(webhook, event) pairs newly due; advances what has been reported."""
    rep = reporter(state)
    db = state.store.db
    max_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM deliveries").fetchone()[0]
    max_change = db.execute("SELECT COALESCE(MAX(cid), 0) FROM changes").fetchone()[0]
    if rep.last_seq is None or max_seq < rep.last_seq or max_change < (rep.last_change or 0):
        start_here(state)  # never replay history (a database restored from a file, say)
        return []
    hooks = [h for h in _hooks(state) if not h["disabled"]]
    if not hooks:  # nobody listens: nothing to watch
        rep.last_seq, rep.last_change = max_seq, max_change
        rep.watched.clear()
        return []
    for (seq,) in db.execute(
        "SELECT seq FROM deliveries WHERE seq>? ORDER BY seq", (rep.last_seq,)
    ):
        rep.watched[seq] = set()
    rep.last_seq = max_seq
    while len(rep.watched) > MAX_WATCHED:
        rep.watched.pop(next(iter(rep.watched)))
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    at = state.clock.now()
    if rep.watched:
        for d in state.store.deliveries(seqs=list(rep.watched)):
            if not visible(d, at):
                continue
            if at - d["created_f"] > FOLLOW_FOR:
                rep.watched.pop(d["seq"], None)
                continue
            metrics, failure = lifecycle(state, d, at)
            done = rep.watched[d["seq"]]
            for metric, ts in sorted(metrics.items(), key=lambda kv: kv[1]):
                if metric == "created" or metric in done:
                    continue
                done.add(metric)
                for hook in hooks:
                    wanted = f"{OBJECT_TYPE.get(d['channel'])}_{metric}"
                    if wanted in hook["events"]:
                        event = message_event(state, d, metric, ts, failure, hook["with_content"])
                        if event is not None:
                            out.append((hook, event))
    for pk, old, new, ts in db.execute(
        "SELECT pk, old, new, ts FROM changes WHERE cid>? AND name='unsubscribed' ORDER BY cid",
        (rep.last_change,),
    ):
        now_unsubscribed = (new or "").lower() == "true"
        if now_unsubscribed == ((old or "").lower() == "true"):
            continue
        name = "customer_unsubscribed" if now_unsubscribed else "customer_subscribed"
        for hook in hooks:
            if name in hook["events"]:
                out.append((hook, customer_event(state, pk, now_unsubscribed, int(ts))))
    rep.last_change = max_change
    return out


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """One attempt: the status, or 0 when there was no answer. No redirects are followed."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=POST_TIMEOUT) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


async def _worker(rep: Reporter, queue: asyncio.Queue, key: str) -> None:
    loop = asyncio.get_running_loop()
    while True:
        hook, event = await queue.get()
        body = json.dumps(event, separators=(",", ":")).encode()
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            if delay:
                await asyncio.sleep(delay)
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Customer.io Emulator Reporting Webhook",
                "X-CIO-Timestamp": str(stamp),
                "X-CIO-Signature": signature(key, stamp, body),
            }
            status = await loop.run_in_executor(None, _post, hook["endpoint"], body, headers)
            rep.outbox.append(
                {
                    "webhook_id": hook["id"],
                    "event_id": event["event_id"],
                    "event": f"{event['object_type']}_{event['metric']}",
                    "attempt": attempt,
                    "status": status,
                    "time": time.time(),
                }
            )
            if 200 <= status < 300:
                break
        else:
            log.warning("reporting webhook %s: event %s dropped", hook["id"], event["event_id"])


def dispatch(state: State) -> None:
    """One tick: queue what became due, one queue (and worker) per webhook."""
    rep = reporter(state)
    key = signing_key()
    for hook, event in scan(state):
        queue = rep.queues.get(hook["id"])
        if queue is None:
            queue = rep.queues[hook["id"]] = asyncio.Queue()
            rep.workers[hook["id"]] = asyncio.get_running_loop().create_task(
                _worker(rep, queue, key)
            )
        queue.put_nowait((hook, event))


async def ticker(state: State) -> None:
    """Runs on the emulator's event loop until cancelled."""
    rep = reporter(state)
    start_here(state)
    try:
        while True:
            await asyncio.sleep(TICK)
            try:
                dispatch(state)
            except Exception:  # a bad tick must not stop the next ones
                log.exception("emulator reporting webhooks tick failed")
    finally:
        for task in rep.workers.values():
            task.cancel()
        await asyncio.gather(*rep.workers.values(), return_exceptions=True)
        rep.workers.clear()
        rep.queues.clear()


def routes(state: State) -> list[Route]:
    """GET /_emulator/webhooks: the attempts made (webhook, event, attempt, status)."""

    async def outbox(request: Request) -> Response:
        body = json.dumps({"attempts": list(reporter(state).outbox)})
        return Response(body.encode(), media_type="application/json")

    return [Route("/_emulator/webhooks", outbox, methods=["GET"])]
