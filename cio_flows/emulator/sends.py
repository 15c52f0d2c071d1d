"""Transactional sends: POST /v1/send/{email,push,sms,whatsapp,in_app,inbox_message}.

Errors use the send endpoints' own shape, `{"meta": {"error": "..."}}`. Required fields follow the
spec: email needs `to` (and a template, unless `body`, `subject` and `from` are all given); sms
needs `transactional_message_id`, `identifiers` and `to`; push, whatsapp, in_app and
inbox_message need `transactional_message_id` and `identifiers`. `identifiers` holds exactly one
of id, email, cio_id; an unknown id or email is created.

When the workspace defines templates, `transactional_message_id` must name one, by number or by
trigger name (case-insensitive), on the matching channel: unknown is 404, wrong channel 400.
`auto_create: true` with an unknown trigger name creates an empty template on this channel, as
Customer.io does. With no templates at all, any id is accepted so a bare emulator still runs
simple flows. Every accepted send is recorded as a message with a lifecycle (messages.py);
nothing is sent. A push's `custom_device` is added to the person first. Sends are not
idempotent: the same body twice makes two deliveries.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from .config import TRANSACTIONAL
from .core import APP, META_ERROR, ApiError, Req, collect, require_object, route
from .esp import suppressed
from .liquid_render import render_send
from .messages import plan
from .state import State
from .store import CIO_ID, EMAIL, ID, Store

PAYLOAD_LIMIT = 1024 * 1024
ATTACHMENTS_LIMIT = 2 * 1024 * 1024
MAX_RECIPIENTS = 15
CHANNELS = ("email", "push", "sms", "whatsapp", "in_app", "inbox_message")
NEEDS_TO = ("email", "sms")


def new_delivery_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


def _template(state: State, body: dict[str, Any], channel: str) -> tuple[int | None, str | None]:
    ref = body.get("transactional_message_id")
    if ref is None and channel == "email" and all(body.get(k) for k in ("body", "subject", "from")):
        return None, None  # an email written out in full needs no template
    if ref is None or ref == "" or isinstance(ref, bool) or not isinstance(ref, int | str):
        raise ApiError(400, "transactional_message_id is required (a number or trigger name)")
    key = str(ref)
    numeric = isinstance(ref, int) or key.isdigit()
    if not state.templates:
        return (int(key) if numeric else None), key
    tpl = state.templates.get(f"id:{key}" if numeric else f"trigger:{key.lower()}")
    if tpl is None and not numeric and body.get("auto_create") is True:
        tpl = _auto_create(state, key, channel)
    if tpl is None:
        raise ApiError(404, f"transactional message {key!r} not found")
    if tpl["channel"] != channel:
        raise ApiError(
            400, f"transactional message {key!r} is a {tpl['channel']} message, not {channel}"
        )
    return tpl["id"], key


def _auto_create(state: State, trigger: str, channel: str) -> dict[str, Any]:
    tid = state.store.db.execute(
        "INSERT INTO templates(trigger, name, channel) VALUES(?,?,?)", (trigger, trigger, channel)
    ).lastrowid
    tpl = {"id": tid, "trigger": trigger, "name": trigger, "channel": channel}
    state.add_template(tpl)
    return tpl


def _identifiers(body: dict[str, Any]) -> tuple[str, str]:
    ident = body.get("identifiers")
    if not isinstance(ident, dict):
        raise ApiError(400, "'identifiers' is required: one of id, email or cio_id")
    present = [(k, v) for k, v in ident.items() if v not in (None, "")]
    if len(present) != 1 or present[0][0] not in (ID, EMAIL, CIO_ID):
        raise ApiError(400, "'identifiers' must hold exactly one of id, email or cio_id")
    kind, value = present[0]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, f"identifiers.{kind} must be a string")
    return kind, str(value)


def _person(store: Store, kind: str, value: str) -> int:
    """The recipient; an unknown id or email is created, as Customer.io does."""
    pk = store.find(kind, value)
    if pk is None and kind == CIO_ID:
        raise ApiError(400, f"no person with cio_id {value!r}")
    if pk is None:
        pk = store.identify(value if kind == ID else None, value if kind == EMAIL else None)
        if pk is None:
            raise ApiError(400, "the person is suppressed")
    return pk


def _recipients(body: dict[str, Any]) -> int:
    count = 0
    for key in ("to", "cc", "bcc"):
        value = body.get(key)
        if isinstance(value, str) and value:
            count += len([part for part in value.split(",") if part.strip()])
        elif isinstance(value, list):
            count += len(value)
    return count


def _check_email(body: dict[str, Any], size: int) -> None:
    attachments = body.get("attachments") or {}
    if not isinstance(attachments, dict):
        raise ApiError(400, "'attachments' must map file names to base64 content")
    attached = sum(len(str(v)) for v in attachments.values())
    if attached > ATTACHMENTS_LIMIT:
        raise ApiError(400, "attachments exceed 2 MB")
    if size - attached > PAYLOAD_LIMIT:
        raise ApiError(400, "payload exceeds 1 MB (attachments excluded)")
    if _recipients(body) > MAX_RECIPIENTS:
        raise ApiError(400, f"at most {MAX_RECIPIENTS} recipients across to, cc and bcc")


def send(state: State, req: Req, channel: str) -> tuple[int, Any]:
    body = require_object(req.body)
    if channel == "email":
        _check_email(body, req.size)
    elif req.size > PAYLOAD_LIMIT:
        raise ApiError(400, "payload exceeds 1 MB")
    recipient = body.get("to")
    if channel in NEEDS_TO and (not isinstance(recipient, str) or not recipient.strip()):
        raise ApiError(400, "'to' is required")
    template_id, template = _template(state, body, channel)
    pk, identifiers = None, None
    if channel != "email" or body.get("identifiers") is not None:
        kind, value = _identifiers(body)
        identifiers = {kind: value}
    data = body.get("message_data")
    if data is not None and not isinstance(data, dict):
        raise ApiError(400, "'message_data' must be an object")
    send_at = body.get("send_at")
    if send_at is not None and (isinstance(send_at, bool) or not isinstance(send_at, int)):
        raise ApiError(400, "'send_at' must be a unix timestamp")
    device = body.get("custom_device") if channel == "push" else None
    if device is not None:
        _check_device(device)
    if identifiers:
        pk = _person(state.store, kind, value)
    if device is not None and pk is not None:
        state.store.put_device(pk, {**device, "id": device["token"]})
    created = state.clock.now()
    queued_at = int(created)
    to = recipient if isinstance(recipient, str) and recipient.strip() else None
    draft = body.get("queue_draft") is True
    shown, outcome, failure = plan(state.store, channel, pk, to, draft=draft)
    # The template's subject and body (or the request's own), rendered with Liquid.
    tpl = state.templates.get(f"id:{template_id}") if template_id is not None else None
    rendered = render_send(state.store, tpl, body, pk)
    if rendered.failure and not draft:
        outcome, failure = "failed", rendered.failure
    if not draft and outcome not in ("failed", "undeliverable"):
        outcome, failure = _opt_out(state, body, channel, pk, shown) or (outcome, failure)
    delivery = {
        "id": new_delivery_id(),
        "pk": pk,
        "channel": channel,
        "template_id": template_id,
        "template": template,
        "identifiers": identifiers or {},
        "recipient": shown or (None if recipient is None else str(recipient)),
        "subject": rendered.subject,
        "body": body,
        "content": rendered.body,
        "created": queued_at,
        "send_at": send_at,
        "created_f": created,
        "start_f": max(created, float(send_at or 0)),  # a past send_at sends now
        "outcome": outcome,
        "failure": failure,
    }
    state.store.add_delivery(delivery)
    return 200, {"delivery_id": delivery["id"], "queued_at": queued_at}


def _opt_out(
    state: State, body: dict[str, Any], channel: str, pk: int | None, shown: str
) -> tuple[str, str] | None:
    """(outcome, reason) when the recipient has opted out, else None.

    `send_to_unsubscribed` defaults to true on every send endpoint (app.json: email, push and
    sms), so only an explicit false holds a message back from an unsubscribed person; an
    address on an ESP suppression list is dropped whatever the send says.
    """
    if channel == "email" and shown:
        for address in shown.split(","):
            listed = suppressed(state, address.strip())
            if listed:
                return "dropped", f"{address.strip()} is on the ESP {listed} suppression list"
    wants = body.get("send_to_unsubscribed", True)
    if wants is not False or pk is None:
        return None
    if state.store.db.execute(
        "SELECT 1 FROM attrs WHERE pk=? AND name='unsubscribed' AND str='true'", (pk,)
    ).fetchone():
        return "failed", "the person is unsubscribed and send_to_unsubscribed is false"
    return None


def _check_device(device: Any) -> None:
    if (
        not isinstance(device, dict)
        or not isinstance(device.get("token"), str)
        or not device["token"]
    ):
        raise ApiError(400, "'custom_device' needs a 'token'")
    if device.get("platform") not in ("ios", "android"):
        raise ApiError(400, "custom_device.platform must be ios or android")
    attributes = device.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise ApiError(400, "custom_device.attributes must be an object")


def _endpoint(channel: str):
    def handler(state: State, req: Req) -> tuple[int, Any]:
        return send(state, req, channel)

    handler.__name__ = f"send_{channel}"
    return route("POST", f"/v1/send/{channel}", APP, style=META_ERROR, bucket=TRANSACTIONAL)(
        handler
    )


for _channel in CHANNELS:
    globals()[f"send_{_channel}"] = _endpoint(_channel)

ROUTES = collect(globals())
