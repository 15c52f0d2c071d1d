"""Activities: GET /v1/customers/{id}/activities (one person) and GET /v1/activities (the
workspace, last 30 days, the only span Customer.io guarantees).

Events (event, page with `url`, screen), `attribute_change` (`data: {name: {from, to}}`) and one
activity per message metric reached (`sent_email`, `opened_email`, `bounced_email`, ...),
newest first; `type` and `name` filter; `customer_id` (with `id_type`, or `cio_`-prefixed)
narrows the workspace read to one person.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .app_api import ID_TYPES, lookup_person
from .core import APP, ApiError, Req, collect, route
from .messages import ACTIVITY_LIMIT, MESSAGE_TYPE, lifecycle, page_of
from .openapi import deref, operations
from .state import State
from .store import CIO_ID, ID

DELIVERY_TYPE = {"email": "email", "sms": "phone", "whatsapp": "phone"}
WORKSPACE_DAYS = 30
# A message's metrics follow its creation within this long (the demo's opens take hours);
# older messages are not scanned for the workspace read.
METRIC_LAG = 7 * 86400


@cache
def documented_types() -> frozenset[str]:
    """Activity types the App API documents; message metrics of other types (human_opened,
    sent_whatsapp, ...) are not listed as activities (README: deviations)."""
    op = next(o for o in operations("app") if o.path == "/v1/activities")
    schema = deref("app", (op.response(200) or {})["content"]["application/json"]["schema"])
    item = deref("app", deref("app", schema["properties"]["activities"])["items"])
    return frozenset(deref("app", item["properties"]["type"])["enum"])


def activity_rows(state: State, pk: int | None, since: float = 0) -> list[dict[str, Any]]:
    """One person's (pk) or everyone's (None) activities at or after `since`, newest first."""
    db = state.store.db
    where, args = ("pk=?", [pk]) if pk is not None else ("pk IS NOT NULL", [])
    people: dict[int, dict[str, Any]] = {}

    def who(owner: int) -> dict[str, Any]:
        if owner not in people:
            person = state.store.person(owner) or {"id": None, "email": None, "cio_id": None}
            people[owner] = {
                "customer_id": person["id"],
                "customer_identifiers": {k: person[k] for k in ("id", "email", "cio_id")},
            }
        return people[owner]

    keyed: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for eid, owner, name, kind, data, ts in db.execute(
        f"SELECT eid, pk, name, type, data, timestamp FROM events WHERE {where} AND timestamp>=?",
        [*args, since],
    ):
        row = {"id": f"ev{eid}", **who(owner), "type": kind, "name": name, "timestamp": ts}
        row["data"] = json.loads(data)
        if kind == "page":
            row["url"] = name
        keyed.append(((ts, 0, eid), row))
    for cid, owner, name, old, new, ts in db.execute(
        f"SELECT cid, pk, name, old, new, ts FROM changes WHERE {where} AND ts>=?",
        [*args, since],
    ):
        row = {"id": f"ac{cid}", **who(owner), "type": "attribute_change", "name": name}
        row.update(timestamp=ts, data={name: {"from": old or "", "to": new or ""}})
        keyed.append(((ts, 1, cid), row))
    at = state.clock.now()
    seqs = [
        seq
        for (seq,) in db.execute(
            f"SELECT seq FROM deliveries WHERE {where} AND COALESCE(created_f, queued_at)>=?",
            [*args, since - METRIC_LAG if since else 0],
        )
    ]
    platforms: dict[str, str] = {}
    for d in state.store.deliveries(seqs=seqs) if seqs else ():
        if d["created_f"] > at:
            continue  # a broadcast's messages exist once its trigger is processed
        metrics, _ = lifecycle(state, d, at)
        mtype = MESSAGE_TYPE.get(d["channel"], d["channel"])
        delivery_type = DELIVERY_TYPE.get(d["channel"])
        if d["channel"] == "push":
            if d["pk"] not in platforms:
                platforms.update({x["id"]: x["platform"] for x in state.store.devices(d["pk"])})
            delivery_type = platforms.get(d["recipient"])
        for step, (metric, ts) in enumerate(metrics.items()):
            kind = f"{metric}_{mtype}"
            if metric == "created" or ts < since or kind not in documented_types():
                continue
            row = {"id": f"dl{d['seq']}:{metric}", **who(d["pk"]), "type": kind}
            row.update(name=d["template"], timestamp=ts)
            if delivery_type is not None:
                row["delivery_type"] = delivery_type
            row["data"] = {
                "delivery_id": d["id"],
                "delivered": metrics.get("delivered"),
                "opened": "opened" in metrics,
            }
            row["delivery_id"] = d["id"]
            keyed.append(((ts, 2, d["seq"] * 100 + step), row))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [row for _, row in keyed]


def _filtered(rows: list[dict[str, Any]], req: Req) -> list[dict[str, Any]]:
    wanted_type, wanted_name = req.query.get("type"), req.query.get("name")
    if wanted_type:
        rows = [r for r in rows if r["type"] == wanted_type]
    if wanted_name:
        rows = [r for r in rows if r["name"] == wanted_name]
    return rows


@route("GET", "/v1/customers/{customer_id}/activities", APP, mutating=False)
def customer_activities(state: State, req: Req) -> tuple[int, Any]:
    rows = activity_rows(state, lookup_person(state, req))
    return 200, page_of(_filtered(rows, req), req, "activities", ACTIVITY_LIMIT)


@route("GET", "/v1/activities", APP, mutating=False)
def workspace_activities(state: State, req: Req) -> tuple[int, Any]:
    pk = None
    customer = req.query.get("customer_id")
    if customer:
        id_type = req.query.get("id_type") or ID
        if id_type not in (*ID_TYPES, "phone"):
            raise ApiError(400, "id_type must be id, email, phone or cio_id")
        if customer.startswith("cio_"):
            id_type, customer = CIO_ID, customer[4:]
        pk = state.store.find(id_type, customer) if id_type != "phone" else None
        if pk is None:
            return 200, {"activities": [], "next": ""}
    since = state.clock.now() - WORKSPACE_DAYS * 86400
    rows = activity_rows(state, pk, since)
    return 200, page_of(_filtered(rows, req), req, "activities", ACTIVITY_LIMIT)


ROUTES = collect(globals())
