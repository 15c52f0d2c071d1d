"""More reads about programs, from the messages the emulator holds: a broadcast's, newsletter's
and transactional message's messages and metrics, a broadcast's action, link metrics (always
empty: the emulator tracks no links), a segment's users (`used_by`), the workspaces list; and
deleting a newsletter.

Each answers 404 for a program the workspace does not hold. Metrics are the series
programs.py computes (`period`, `steps`, `type`).
"""

from __future__ import annotations

import json
from typing import Any

from .core import APP, ApiError, Req, collect, route
from .messages import MESSAGE_TYPE, MESSAGES_LIMIT, page_of, views
from .programs import exists, series
from .state import State

# The path parameter, what it names, and the deliveries it selects.
PROGRAMS = {
    "broadcasts": ("broadcast_id", "broadcast", "broadcast_id=?"),
    "newsletters": ("newsletter_id", "newsletter", "newsletter_id=?"),
    "transactional": (
        "transactional_id",
        "transactional",
        "template_id=? AND kind='transactional'",
    ),
}


def _selected(state: State, req: Req, family: str) -> tuple[str, list[Any]]:
    param, kind, where = PROGRAMS[family]
    raw = req.params[param]
    if not exists(state, kind, raw):
        raise ApiError(404, f"{kind} {raw} not found")
    return where, [int(raw)]


def _messages(family: str):
    def handler(state: State, req: Req) -> tuple[int, Any]:
        where, args = _selected(state, req, family)
        at = state.clock.now()
        seqs = [
            seq
            for seq, created_f in state.store.db.execute(
                f"SELECT seq, created_f FROM deliveries WHERE {where} ORDER BY seq DESC", args
            )
            if created_f is None or created_f <= at
        ]
        return 200, page_of(seqs, req, "messages", MESSAGES_LIMIT, lambda c: views(state, c))

    handler.__name__ = f"{family}_messages"
    param = PROGRAMS[family][0]
    return route("GET", f"/v1/{family}/{{{param}}}/messages", APP, mutating=False)(handler)


def _metrics(family: str):
    def handler(state: State, req: Req) -> tuple[int, Any]:
        where, args = _selected(state, req, family)
        return series(state, where, args, req)

    handler.__name__ = f"{family}_metrics"
    param = PROGRAMS[family][0]
    return route("GET", f"/v1/{family}/{{{param}}}/metrics", APP, mutating=False)(handler)


broadcast_messages = _messages("broadcasts")
newsletter_messages = _messages("newsletters")
transactional_messages = _messages("transactional")
transactional_metrics = _metrics("transactional")


@route("DELETE", "/v1/newsletters/{newsletter_id}", APP)
def delete_newsletter(state: State, req: Req) -> tuple[int, Any]:
    _selected(state, req, "newsletters")
    state.store.db.execute(
        "DELETE FROM programs WHERE kind='newsletter' AND id=?", (int(req.params["newsletter_id"]),)
    )
    return 204, None


@route("GET", "/v1/segments/{segment_id}/used_by", APP, mutating=False)
def segment_used_by(state: State, req: Req) -> tuple[int, Any]:
    raw = req.params["segment_id"]
    if not exists(state, "segment", raw):
        raise ApiError(404, "segment not found")
    segment = int(raw)
    campaigns: list[int] = []
    for pid, details in state.store.db.execute(
        "SELECT id, details FROM programs WHERE kind='campaign' ORDER BY id"
    ):
        extra = json.loads(details)
        if extra.get("segment") == segment or segment in (extra.get("segments") or ()):
            campaigns.append(pid)
    newsletters = [
        pid
        for pid, details in state.store.db.execute(
            "SELECT id, details FROM programs WHERE kind='newsletter' ORDER BY id"
        )
        if segment in (json.loads(details).get("recipient_segment_ids") or [5])
    ]
    return 200, {
        "used_by": {
            "campaigns": campaigns,
            "sent_newsletters": newsletters,
            "draft_newsletters": [],
        }
    }


@route("GET", "/v1/workspaces", APP, mutating=False)
def workspaces(state: State, req: Req) -> tuple[int, Any]:
    db = state.store.db
    people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
    sent = db.execute(
        "SELECT COUNT(*) FROM deliveries WHERE outcome NOT IN ('drafted', 'failed', 'dropped')"
        " OR outcome IS NULL"
    ).fetchone()[0]
    objects = db.execute("SELECT COUNT(*) FROM objects").fetchone()[0]
    types = db.execute("SELECT COUNT(DISTINCT type_id) FROM objects").fetchone()[0]
    workspace = {
        "id": 1,
        "name": "Emulator workspace",
        "messages_sent": sent,
        "billable_messages_sent": sent,
        "people": people,
        "object_types": types,
        "objects": objects,
    }
    return 200, {"workspaces": [workspace]}


# -- broadcast actions and link metrics ---------------------------------------------------------


def _broadcast(state: State, req: Req) -> tuple[int, str, str, str | None, int]:
    raw = req.params["broadcast_id"]
    row = (
        state.store.db.execute(
            "SELECT id, name, channel, subject, created_at FROM broadcasts WHERE id=?", (int(raw),)
        ).fetchone()
        if raw.isdigit()
        else None
    )
    if row is None:
        raise ApiError(404, f"broadcast {raw} not found")
    return row


def _broadcast_action(state: State, req: Req) -> dict[str, Any]:
    """A broadcast's one message action (id broadcast_id * 1000 + 1, as programs.py lists it)."""
    bid, name, channel, subject, created = _broadcast(state, req)
    return {
        "id": bid * 1000 + 1,
        "broadcast_id": bid,
        "deduplicate_id": f"{bid * 1000 + 1}:{created}",
        "name": name,
        "layout": "{{ content }}",
        "created": created,
        "updated": created,
        "body": "",
        "type": MESSAGE_TYPE.get(channel, channel),
        "sending_state": "automatic",
        "language": "",
        "recipient": "{{customer.email}}" if channel == "email" else "",
        "subject": subject or "",
        "headers": {},
    }


def _action_id(state: State, req: Req) -> dict[str, Any]:
    action = _broadcast_action(state, req)
    if req.params["action_id"] != str(action["id"]):
        raise ApiError(404, "action not found")
    return action


@route("GET", "/v1/broadcasts/{broadcast_id}/actions", APP, mutating=False)
def broadcast_actions(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"actions": [_broadcast_action(state, req)]}


@route("GET", "/v1/broadcasts/{broadcast_id}/actions/{action_id}", APP, mutating=False)
def broadcast_action(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"action": _action_id(state, req)}


@route("GET", "/v1/broadcasts/{broadcast_id}/actions/{action_id}/metrics", APP, mutating=False)
def broadcast_action_metrics(state: State, req: Req) -> tuple[int, Any]:
    action = _action_id(state, req)
    return series(state, "broadcast_id=?", [action["broadcast_id"]], req)


@route("GET", "/v1/campaigns/{campaign_id}/actions/{action_id}/metrics", APP, mutating=False)
def campaign_action_metrics(state: State, req: Req) -> tuple[int, Any]:
    campaign, action = req.params["campaign_id"], req.params["action_id"]
    if not exists(state, "campaign", campaign) or not action.isdigit():
        raise ApiError(404, "campaign or action not found")
    where = "(campaign_id=? OR broadcast_id=?) AND action_id=?"
    return series(state, where, [int(campaign), int(campaign), int(action)], req)


# -- newsletter contents ----------------------------------------------------------------------


def _newsletter(state: State, req: Req) -> tuple[int, str, dict[str, Any]]:
    raw = req.params["newsletter_id"]
    row = (
        state.store.db.execute(
            "SELECT id, name, details, created_at FROM programs WHERE kind='newsletter' AND id=?",
            (int(raw),),
        ).fetchone()
        if raw.isdigit()
        else None
    )
    if row is None:
        raise ApiError(404, f"newsletter {raw} not found")
    return row[0], row[1], {**json.loads(row[2]), "created_at": row[3]}


def _contents(state: State, req: Req) -> list[dict[str, Any]]:
    """A newsletter's one content (its template), as the App API shows a variant."""
    nid, name, details = _newsletter(state, req)
    content = details.get("template")
    if content is None:
        return []
    subject = ""
    for (text,) in state.store.db.execute(
        "SELECT DISTINCT subject FROM deliveries WHERE newsletter_id=? AND subject IS NOT NULL"
        " LIMIT 1",
        (nid,),
    ):
        subject = text
    return [
        {
            "id": content,
            "newsletter_id": nid,
            "deduplicate_id": f"{content}:{details['created_at']}",
            "name": name,
            "layout": "{{ content }}",
            "body": "",
            "language": "",
            "type": "email",
            "recipient": "{{customer.email}}",
            "subject": subject,
            "headers": {},
        }
    ]


@route("GET", "/v1/newsletters/{newsletter_id}/contents", APP, mutating=False)
def newsletter_contents(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"contents": _contents(state, req)}


@route("GET", "/v1/newsletters/{newsletter_id}/contents/{content_id}", APP, mutating=False)
def newsletter_content(state: State, req: Req) -> tuple[int, Any]:
    for content in _contents(state, req):
        if str(content["id"]) == req.params["content_id"]:
            return 200, {"content": content}
    raise ApiError(404, "content not found")


@route("GET", "/v1/newsletters/{newsletter_id}/test_groups", APP, mutating=False)
def newsletter_test_groups(state: State, req: Req) -> tuple[int, Any]:
    _newsletter(state, req)
    return 200, {"test_groups": []}  # the emulator's newsletters have no A/B tests


def _no_links(kind: str, param: str, extra: str | None = None):
    """Link metrics: the emulator tracks no links, so every list is empty (not invented)."""

    def handler(state: State, req: Req) -> tuple[int, Any]:
        if not exists(state, kind, req.params[param]):
            raise ApiError(404, f"{kind} {req.params[param]} not found")
        return 200, {"links": []}

    handler.__name__ = f"{kind}_{extra or 'program'}_links"
    return handler


for _path, _kind, _param in (
    ("/v1/campaigns/{campaign_id}/metrics/links", "campaign", "campaign_id"),
    ("/v1/campaigns/{campaign_id}/actions/{action_id}/metrics/links", "campaign", "campaign_id"),
    ("/v1/broadcasts/{broadcast_id}/metrics/links", "broadcast", "broadcast_id"),
    (
        "/v1/broadcasts/{broadcast_id}/actions/{action_id}/metrics/links",
        "broadcast",
        "broadcast_id",
    ),
    ("/v1/newsletters/{newsletter_id}/metrics/links", "newsletter", "newsletter_id"),
    (
        "/v1/newsletters/{newsletter_id}/contents/{content_id}/metrics/links",
        "newsletter",
        "newsletter_id",
    ),
    ("/v1/transactional/{transactional_id}/metrics/links", "transactional", "transactional_id"),
):
    globals()[f"links_{_path}"] = route("GET", _path, APP, mutating=False)(
        _no_links(_kind, _param, _path.count("/").__str__())
    )


ROUTES = collect(globals())
