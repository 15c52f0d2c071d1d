"""Campaigns run by the emulator: people enter, wait on the emulator's clock, and get messages.

A person enters an event-triggered campaign when an event of that name is recorded for them,
a segment-triggered one when they join the segment (once: no re-entry; people already in it
when the workspace loads do not enter). The campaign's `filter`, if any, must match on entry.
Then its actions run in order: a `wait` parks the journey until the clock reaches it, a `send`
records a message (campaign_id, action_id, the template rendered with Liquid) unless its `when`
does not match the person at that moment. A person deleted on the way leaves the journey.

Nothing runs in a request: a ticker on the emulator's event loop looks every TICK seconds
(between requests, in a transaction of its own), and `POST /_emulator/clock {"advance": "1d"}`
moves the clock and runs what became due at once, each step stamped with the time it was due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import campaigns
from .clock import ClockError, parse_duration
from .core import load_json
from .liquid_render import context_for, render_message
from .messages import plan
from .sends import new_delivery_id
from .state import State

log = logging.getLogger("cio_flows.emulator")
TICK = 0.1  # seconds between looks for due work: well under any wait a test would use
# The connection's total_changes when segment entries were last looked for: unchanged data
# cannot have moved anyone into a segment, so most ticks skip the segment queries.
_seen_changes: weakref.WeakKeyDictionary[State, int] = weakref.WeakKeyDictionary()


def tick(state: State) -> int:
    """Let new people in and run what is due (caller holds the transaction); messages sent."""
    defs = {c["id"]: c for c in campaigns.definitions(state.store)}
    if not defs:
        return 0
    now = state.clock.now()
    _enter_by_event(state, defs, now)
    _enter_by_segment(state, defs, now)
    sent = run_due(state, defs, now)
    _seen_changes[state] = state.store.db.total_changes
    return sent


def advance(state: State, seconds: float) -> dict[str, Any]:
    """Move the clock forward and run everything that became due (caller holds the transaction)."""
    sent = tick(state)  # who entered before the jump enters at the time they did
    state.clock.advance(seconds)
    sent += tick(state)
    return {**state.clock.view(), "sent": sent}


def _enter_by_event(state: State, defs: dict[int, dict[str, Any]], now: float) -> None:
    """The events campaigns.JOURNEY_SCHEMA's trigger queued since the last tick."""
    db = state.store.db
    queued = db.execute(
        "SELECT qid, cio_id, name, data FROM journey_events ORDER BY qid"
    ).fetchall()
    if not queued:
        return
    by_name: dict[str, list[dict[str, Any]]] = {}
    for c in defs.values():
        if c["type"] == "event":
            by_name.setdefault(c["event_name"], []).append(c)
    for _qid, cio_id, name, data in queued:
        pk = state.store.find("cio_id", cio_id) if cio_id else None
        if pk is None:
            continue  # deleted before the tick: nobody to enter
        event = {**json.loads(data), "name": name}
        for c in by_name.get(name, ()):
            _enter(state, c, pk, now, event)
    db.execute("DELETE FROM journey_events WHERE qid<=?", (queued[-1][0],))


def _enter_by_segment(state: State, defs: dict[int, dict[str, Any]], now: float) -> None:
    db = state.store.db
    if _seen_changes.get(state) == db.total_changes:
        return
    for c in defs.values():
        if c["type"] != "segment":
            continue
        sql, args = state.segments.segment_condition(c["segment"])
        joined = db.execute(
            f"SELECT p.pk, p.cio_id FROM people p WHERE {sql} AND p.cio_id NOT IN"
            " (SELECT cio_id FROM journey_entries WHERE campaign_id=?) ORDER BY p.pk",
            [*args, c["id"]],
        ).fetchall()
        for pk, cio_id in joined:
            db.execute("INSERT INTO journey_entries VALUES(?,?)", (c["id"], cio_id))
            _enter(state, c, pk, now, None)


def _enter(
    state: State, c: dict[str, Any], pk: int, now: float, event: dict[str, Any] | None
) -> None:
    person = state.store.person(pk)
    if person is None:
        return
    if c.get("filter") is not None and not _matches(state, pk, c["filter"]):
        return
    state.store.db.execute(
        "INSERT INTO journeys(campaign_id, cio_id, step, due_f, event) VALUES(?,?,?,?,?)",
        (c["id"], person["cio_id"], 0, now, None if event is None else json.dumps(event)),
    )


def _matches(state: State, pk: int, flt: Any) -> bool:
    sql, args = state.segments.condition(flt)
    hit = state.store.db.execute(f"SELECT 1 FROM people p WHERE p.pk=? AND {sql}", [pk, *args])
    return hit.fetchone() is not None


def run_due(state: State, defs: dict[int, dict[str, Any]], now: float) -> int:
    """Journeys due by `now`, earliest first, each step at the time it fell due."""
    db = state.store.db
    sent = 0
    while True:
        row = db.execute(
            "SELECT jid, campaign_id, cio_id, step, due_f, event FROM journeys"
            " WHERE done=0 AND due_f<=? ORDER BY due_f, jid LIMIT 1",
            (now,),
        ).fetchone()
        if row is None:
            return sent
        jid, campaign_id, cio_id, step, at, event = row
        c = defs.get(campaign_id)
        steps = c["steps"] if c else []
        pk = state.store.find("cio_id", cio_id)
        if pk is None:
            step = len(steps)  # deleted (or merged away) on the way: out of the journey
        waiting = False
        while step < len(steps) and not waiting:
            action = steps[step]
            step += 1
            if "wait" in action:
                at += action["wait"]
                waiting = True
            elif pk is None:
                break
            elif action.get("when") is None or _matches(state, pk, action["when"]):
                _send(state, campaign_id, action, pk, at, json.loads(event) if event else None)
                sent += 1
        db.execute(
            "UPDATE journeys SET step=?, due_f=?, done=? WHERE jid=?",
            (step, at, 0 if waiting else 1, jid),
        )


def _send(
    state: State,
    campaign_id: int,
    action: dict[str, Any],
    pk: int,
    at: float,
    event: dict[str, Any] | None,
) -> None:
    store = state.store
    tpl = state.templates.get(f"id:{action['send']}") or {}
    context = context_for(store, pk, event=event)
    rendered = render_message(tpl, context)
    recipient, outcome, failure = plan(store, tpl.get("channel", "email"), pk, None)
    if rendered.failure:
        outcome, failure = "failed", rendered.failure
    person = store.person(pk) or {}
    store.add_delivery(
        {
            "id": new_delivery_id(),
            "pk": pk,
            "channel": tpl.get("channel", "email"),
            "template_id": tpl.get("id"),
            "template": tpl.get("trigger") or tpl.get("name"),
            "identifiers": {k: person[k] for k in ("id", "email", "cio_id") if person.get(k)},
            "recipient": recipient,
            "subject": rendered.subject,
            "body": {"event": event} if event else {},
            "content": rendered.body,
            "created": int(at),
            "send_at": None,
            "kind": "campaign",
            "campaign_id": campaign_id,
            "action_id": action["id"],
            "created_f": at,
            "start_f": at,
            "outcome": outcome,
            "failure": failure,
        }
    )


# -- running: the ticker and the clock's HTTP face --------------------------------------------


def run_now(state: State) -> int:
    if not campaigns.definitions(state.store):
        return 0  # most emulators hold no campaigns: no transaction every tick
    with state.store.tx():
        return tick(state)


async def ticker(state: State) -> None:
    """Runs on the emulator's event loop until cancelled."""
    while True:
        await asyncio.sleep(TICK)
        try:
            run_now(state)
        except Exception:  # a bad tick must not stop the next ones
            log.exception("emulator journeys tick failed")


def advance_now(state: State, by: Any) -> dict[str, Any]:
    seconds = parse_duration(by, "advance")
    with state.store.tx():
        return advance(state, seconds)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload).encode(), status, media_type="application/json")


def routes(state: State) -> list[Route]:
    """GET /_emulator/clock reads the clock; POST {"advance": "1d"} moves it and runs what fell
    due (seconds or a duration: "90", "2h", "1d", "1h30m")."""

    async def clock(request: Request) -> Response:
        if request.method == "GET":
            return _json(state.clock.view())
        try:
            body = load_json(await request.body() or b"{}")
        except ValueError:
            return _json({"error": "malformed JSON in request body"}, 400)
        if not isinstance(body, dict) or set(body) != {"advance"}:
            return _json({"error": 'expected {"advance": SECONDS or DURATION like "1d"}'}, 400)
        try:
            return _json(advance_now(state, body["advance"]))
        except ClockError as exc:
            return _json({"error": str(exc)}, 400)

    async def definitions(request: Request) -> Response:
        return _json(workspace_definitions(state))

    return [
        Route("/_emulator/clock", clock, methods=["GET", "POST"]),
        Route("/_emulator/definitions", definitions, methods=["GET"]),
    ]


def workspace_definitions(state: State) -> dict[str, Any]:
    """What the App API does not show and `cio-flows workspace pull` reads from an emulator:
    template triggers, channels and content, segment filters and manual members, campaign
    triggers, filters and steps (waits and `when` included)."""
    db = state.store.db
    templates = [
        dict(zip(("id", "trigger", "name", "channel", "subject", "body", "from"), row, strict=True))
        for row in db.execute(
            "SELECT id, trigger, name, channel, subject, body, sender FROM templates ORDER BY id"
        )
    ]
    segments = []
    for seg_id, kind, flt in db.execute("SELECT id, type, filter FROM segments ORDER BY id"):
        members = db.execute(
            "SELECT COALESCE(p.id, p.email) FROM segment_members m JOIN people p ON p.pk=m.pk"
            " WHERE m.segment_id=? ORDER BY p.pk",
            (seg_id,),
        ).fetchall()
        segments.append(
            {
                "id": seg_id,
                "type": kind,
                "filter": json.loads(flt) if flt else None,
                "members": [m for (m,) in members],
            }
        )
    broadcasts = [
        dict(zip(("id", "channel", "segment", "subject"), row, strict=True))
        for row in db.execute("SELECT id, channel, segment_id, subject FROM broadcasts ORDER BY id")
    ]
    return {
        "templates": templates,
        "segments": segments,
        "broadcasts": broadcasts,
        "campaigns": campaigns.definitions(state.store),
        "clock": state.clock.view(),
    }
