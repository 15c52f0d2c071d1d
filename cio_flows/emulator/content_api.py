"""What the workspace's templates and campaigns hold, through the App API: transactional
messages and their contents, campaign actions and messages (a message's archived, rendered body
is in messages.py). State-backed, so `cio-flows workspace pull` reads back what a workspace file set.

Transactional contents show `type` only for email and push (the only values the document
allows); an SMS, WhatsApp, in-app or inbox template answers without it.
"""

from __future__ import annotations

import json
from typing import Any

from .core import APP, ApiError, Req, collect, route
from .messages import MESSAGES_LIMIT, page_of, views
from .state import State

CONTENT_TYPES = ("email", "push")  # what the document allows for a transactional content


def _int(req: Req, name: str, what: str) -> int:
    raw = req.params[name]
    if not raw.isdigit():
        raise ApiError(404, f"{what} not found")
    return int(raw)


def _templates(state: State, template_id: int | None = None) -> list[tuple[Any, ...]]:
    sql = "SELECT id, name, channel, subject, body, sender FROM templates"
    if template_id is None:
        return state.store.db.execute(sql + " ORDER BY id").fetchall()
    return state.store.db.execute(sql + " WHERE id=?", (template_id,)).fetchall()


def _created(state: State) -> int:
    """Templates keep no time of their own: when the workspace loaded (its segments'), else now."""
    row = state.store.db.execute("SELECT MIN(created_at) FROM segments").fetchone()
    return int(row[0]) if row and row[0] else state.clock.ts()


def _message(state: State, row: tuple[Any, ...]) -> dict[str, Any]:
    created = _created(state)
    return {
        "id": row[0],
        "name": row[1],
        "send_to_unsubscribed": True,
        "link_tracking": True,
        "open_tracking": True,
        "hide_message_body": False,
        "queue_drafts": False,
        "created_at": created,
        "updated_at": created,
    }


@route("GET", "/v1/transactional", APP, mutating=False)
def list_transactional(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"messages": [_message(state, r) for r in _templates(state)]}


@route("GET", "/v1/transactional/{transactional_id}", APP, mutating=False)
def get_transactional(state: State, req: Req) -> tuple[int, Any]:
    rows = _templates(state, _int(req, "transactional_id", "transactional message"))
    if not rows:
        raise ApiError(404, "transactional message not found")
    return 200, {"message": _message(state, rows[0])}


@route("GET", "/v1/transactional/{transactional_id}/contents", APP, mutating=False)
def transactional_contents(state: State, req: Req) -> tuple[int, Any]:
    rows = _templates(state, _int(req, "transactional_id", "transactional message"))
    if not rows:
        raise ApiError(404, "transactional message not found")
    tid, name, channel, subject, body, sender = rows[0]
    created = _created(state)
    content: dict[str, Any] = {"id": tid, "name": name, "created": created, "updated": created}
    content.update(body=body or "", language="", subject=subject or "", from_id=0)
    if sender:
        content["from"] = sender
    if channel in CONTENT_TYPES:
        content["type"] = channel
    return 200, {"contents": [content]}


# -- campaign actions and messages ------------------------------------------------------------


def _campaign(state: State, req: Req) -> tuple[int, int, dict[str, Any]]:
    campaign_id = _int(req, "campaign_id", "campaign")
    row = state.store.db.execute(
        "SELECT created_at, details FROM programs WHERE kind='campaign' AND id=?", (campaign_id,)
    ).fetchone()
    if row is None:
        raise ApiError(404, "campaign not found")
    return campaign_id, row[0], json.loads(row[1])


def _actions(state: State, campaign_id: int, created: int, details: dict) -> list[dict[str, Any]]:
    """The campaign's message actions, with their template's content (not rendered)."""
    out = []
    steps = {s["id"]: s for s in details.get("steps", ()) if "send" in s}
    for action_id, kind in details.get("actions", ()):
        step = steps.get(action_id, {})
        tpl = state.templates.get(f"id:{step.get('send')}") or {}
        action: dict[str, Any] = {
            "id": action_id,
            "campaign_id": campaign_id,
            "deduplicate_id": f"{action_id}:{created}",
            "name": step.get("name") or tpl.get("name") or "",
            "created": created,
            "updated": created,
            "body": tpl.get("body") or "",
            "language": "",
            "type": kind,
            "sending_state": "automatic",
            "subject": tpl.get("subject") or "",
        }
        if tpl.get("from"):
            action["from"] = tpl["from"]
        out.append(action)
    return out


@route("GET", "/v1/campaigns/{campaign_id}/actions", APP, mutating=False)
def list_actions(state: State, req: Req) -> tuple[int, Any]:
    actions = _actions(state, *_campaign(state, req))
    return 200, {"actions": actions, "next": ""}


@route("GET", "/v1/campaigns/{campaign_id}/actions/{action_id}", APP, mutating=False)
def get_action(state: State, req: Req) -> tuple[int, Any]:
    action_id = _int(req, "action_id", "action")
    for action in _actions(state, *_campaign(state, req)):
        if action["id"] == action_id:
            return 200, {"action": action}
    raise ApiError(404, "action not found")


@route("GET", "/v1/campaigns/{campaign_id}/messages", APP, mutating=False)
def campaign_messages(state: State, req: Req) -> tuple[int, Any]:
    campaign_id, _created_at, _details = _campaign(state, req)
    at = state.clock.now()
    seqs = [
        seq
        for seq, created_f in state.store.db.execute(
            "SELECT seq, created_f FROM deliveries WHERE campaign_id=? ORDER BY seq DESC",
            (campaign_id,),
        )
        if created_f is None or created_f <= at
    ]
    return 200, page_of(seqs, req, "messages", MESSAGES_LIMIT, lambda c: views(state, c))


ROUTES = collect(globals())
