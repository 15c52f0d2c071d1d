"""A read-only look at what the emulator received and holds, apart from Customer.io's paths.

HTTP (JSON, no auth, loopback only, not written to the request log):
  GET  /_emulator/health       {"ok": true}
  GET  /_emulator/requests     request log (?family=track|pipelines|app, ?limit=N for the last N)
  GET  /_emulator/people       people with attributes, oldest first
  GET  /_emulator/events       events, oldest first
  GET  /_emulator/deliveries   recorded transactional sends
  GET  /_emulator/segments     segments with their current member ids
  GET  /_emulator/devices      devices per person
  GET  /_emulator/objects      objects with attributes and related people
  GET  /_emulator/messages     every message with its lifecycle (as GET /v1/messages shows it)
  GET  /_emulator/triggers     broadcast triggers: status, recipients count, errors
  GET  /_emulator/suppressions suppressed identifiers
  POST /_emulator/reset        TEST-ONLY: back to the workspace's initial state (?empty=1: nothing)
The request log holds method, path, query, family, status, body and timing; never the
Authorization header, and bodies are scrubbed of every key the emulator knows.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .state import State


def _who(people: dict[int, dict[str, Any]], pk: int | None) -> dict[str, Any] | None:
    person = people.get(pk) if pk is not None else None
    if person is None:
        return None
    return {"id": person["id"], "email": person["email"], "cio_id": person["cio_id"]}


def _index(state: State) -> dict[int, dict[str, Any]]:
    rows = state.store.db.execute("SELECT pk, id, email, cio_id FROM people")
    return {r[0]: {"id": r[1], "email": r[2], "cio_id": r[3]} for r in rows}


def requests(state: State, family: str | None = None, limit: int | None = None) -> list[dict]:
    rows = [e for e in state.log if family is None or e["family"] == family]
    if limit:
        rows = rows[-limit:]
    # Copies, bodies included: the log must not change because a caller edited what it got.
    return [
        {k: copy.deepcopy(v) if k == "body" else v for k, v in e.items() if k != "_bytes"}
        for e in rows
    ]


def people(state: State) -> list[dict[str, Any]]:
    out = []
    for person in state.store.people():
        person.pop("pk")
        out.append(person)
    return out


def events(state: State) -> list[dict[str, Any]]:
    index = _index(state)
    rows = state.store.db.execute(
        "SELECT pk, anonymous_id, name, type, data, timestamp, family, message_id FROM events "
        "ORDER BY eid"
    )
    return [
        {
            "person": _who(index, r[0]),
            "anonymous_id": r[1],
            "name": r[2],
            "type": r[3],
            "data": json.loads(r[4]),
            "timestamp": r[5],
            "family": r[6],
            "message_id": r[7],
        }
        for r in rows
    ]


def deliveries(state: State) -> list[dict[str, Any]]:
    index = _index(state)
    out = []
    for d in state.store.deliveries():
        d["person"] = _who(index, d.pop("pk"))
        d.pop("seq")
        d["delivery_id"] = d.pop("id")
        d["queued_at"] = d.pop("created")
        out.append(d)
    return out


def segments(state: State) -> list[dict[str, Any]]:
    from .app_api import segment_rows  # app_api imports state; keep the import graph acyclic

    out = []
    for seg in segment_rows(state):
        sql, args = state.segments.segment_condition(seg["id"])
        ids = state.store.db.execute(
            f"SELECT p.id, p.email, p.cio_id FROM people p WHERE {sql} ORDER BY p.pk", args
        ).fetchall()
        flt = state.store.db.execute("SELECT filter FROM segments WHERE id=?", (seg["id"],))
        raw = flt.fetchone()[0]
        out.append(
            {
                **seg,
                "filter": json.loads(raw) if raw else None,
                "count": len(ids),
                "members": [{"id": i, "email": e, "cio_id": c} for i, e, c in ids],
            }
        )
    return out


def devices(state: State) -> list[dict[str, Any]]:
    index = _index(state)
    out = []
    for d in state.store.devices():
        d["person"] = _who(index, d.pop("pk"))
        out.append(d)
    return out


def objects(state: State) -> list[dict[str, Any]]:
    index = _index(state)
    out = state.store.objects()
    for obj in out:
        for rel in obj["relationships"]:
            rel["person"] = _who(index, rel.pop("pk"))
    return out


def messages(state: State) -> list[dict[str, Any]]:
    from .messages import message_view, visible

    at = state.clock.now()
    out = []
    for d in state.store.deliveries():
        msg = message_view(state, d, at)
        msg.update(kind=d["kind"], trigger_id=d["trigger_id"], visible=visible(d, at))
        msg["body"] = d["body"]
        msg["content"] = d["content"]  # the body as rendered for the recipient (Liquid)
        out.append(msg)
    return out


def triggers(state: State) -> list[dict[str, Any]]:
    from .broadcasts import TRIGGER_SQL, trigger_view

    at = state.clock.now()
    out = []
    for row in state.store.db.execute(TRIGGER_SQL + " ORDER BY id").fetchall():
        view = trigger_view(row, at)
        view["errors"] = json.loads(row[5])
        body = state.store.db.execute("SELECT body FROM triggers WHERE id=?", (row[0],))
        view["body"] = json.loads(body.fetchone()[0])
        out.append(view)
    return out


def suppressions(state: State) -> list[str]:
    rows = state.store.db.execute("SELECT identifier FROM suppressions ORDER BY identifier")
    return [r[0] for r in rows]


VIEWS = {
    "people": people,
    "events": events,
    "deliveries": deliveries,
    "segments": segments,
    "devices": devices,
    "objects": objects,
    "messages": messages,
    "triggers": triggers,
    "suppressions": suppressions,
}


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    return Response(body, status, media_type="application/json")


def routes(state: State) -> list[Route]:
    async def get_requests(request: Request) -> Response:
        limit = request.query_params.get("limit")
        family = request.query_params.get("family")
        return _json(requests(state, family, int(limit) if limit and limit.isdigit() else None))

    def view(name: str):
        async def endpoint(request: Request) -> Response:
            return _json(VIEWS[name](state))

        return endpoint

    async def reset(request: Request) -> Response:
        state.reset(empty=request.query_params.get("empty") in ("1", "true"))
        return _json({"ok": True})

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    out = [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/requests", get_requests, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
    ]
    out += [Route(f"/_emulator/{name}", view(name), methods=["GET"]) for name in VIEWS]
    return out
