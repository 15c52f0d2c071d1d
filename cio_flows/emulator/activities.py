"""Activities: GET /v1/customers/{id}/activities (one person) and GET /v1/activities (the
workspace, last 30 days, the only span Customer.io guarantees).

Events (event, page with `url`, screen), `attribute_change` (`data: {name: {from, to}}`) and one
activity per message metric reached (`sent_email`, `opened_email`, `bounced_email`, ...),
newest first; `type` and `name` filter; `customer_id` (with `id_type`, or `cio_`-prefixed)
narrows the workspace read to one person.

A page is read by key, not by building every activity: each activity has a sort key
(timestamp, source, number) and the `start` cursor is the last key shown. Events and attribute
changes come from indexed SQL in key order, LIMIT one page; message metrics are derived on read
(messages.lifecycle), so their keys are computed from a narrow scan of the deliveries and only the
page's best are kept (heapq). Only the page's activities are then built into answers.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any

from .app_api import ID_TYPES, lookup_person
from .core import APP, ApiError, Req, collect, route
from .messages import ACTIVITY_LIMIT, MESSAGE_TYPE, lifecycle, page_limit
from .openapi import deref, operations
from .state import State
from .store import CIO_ID, ID

DELIVERY_TYPE = {"email": "email", "sms": "phone", "whatsapp": "phone"}
WORKSPACE_DAYS = 30
# A message's metrics follow its creation within this long (the demo's opens take hours);
# older messages are not scanned for the workspace read.
METRIC_LAG = 7 * 86400
# Sources in the sort key: at one timestamp, message metrics come before attribute changes,
# which come before events (newest first = descending key).
EVENT, CHANGE, METRIC = 0, 1, 2
Key = tuple[int, int, int]  # (timestamp, source, number): descending is the answer's order
# What builds a metric activity once its key made the page: (seq, metric name, timestamp).
Ref = tuple[int, str, int] | None


@cache
def documented_types() -> frozenset[str]:
    """Activity types the App API documents; message metrics of other types (human_opened,
    sent_whatsapp, ...) are not listed as activities (README: deviations)."""
    op = next(o for o in operations("app") if o.path == "/v1/activities")
    schema = deref("app", (op.response(200) or {})["content"]["application/json"]["schema"])
    item = deref("app", deref("app", schema["properties"]["activities"])["items"])
    return frozenset(deref("app", item["properties"]["type"])["enum"])


@dataclass(frozen=True)
class Query:
    """Which activities: one person's (pk) or everyone's, at or after `since`, of one type and
    name when given, strictly older (by key) than `before` (the cursor)."""

    pk: int | None = None
    since: float = 0
    type: str | None = None
    name: str | None = None
    before: Key | None = None


def activity_rows(
    state: State, pk: int | None, since: float = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """One person's (pk) or everyone's (None) activities at or after `since`, newest first
    (the first `limit` only, when given)."""
    keys = newest_keys(state, Query(pk=pk, since=since), limit)
    return build(state, keys)


def newest_keys(state: State, query: Query, limit: int | None) -> list[tuple[Key, Ref]]:
    """The keys (and what builds each) of the `limit` newest activities the query selects."""
    sources = [
        _event_keys(state, query, limit),
        _change_keys(state, query, limit),
        _metric_keys(state, query, limit),
    ]
    merged = heapq.merge(*sources, key=lambda pair: pair[0], reverse=True)
    return list(islice(merged, limit))


def _before(column: str, idcol: str, source: int, before: Key | None) -> tuple[str, list[Any]]:
    """SQL for "key < before" on a source whose key is (column, source, idcol)."""
    if before is None:
        return "", []
    ts, src, number = before
    if src > source:  # at ts, this source's keys sort below the cursor's
        return f" AND {column}<=?", [ts]
    if src < source:
        return f" AND {column}<?", [ts]
    return f" AND ({column}<? OR ({column}=? AND {idcol}<?))", [ts, ts, number]


def _owner(query: Query) -> tuple[str, list[Any]]:
    return ("pk=?", [query.pk]) if query.pk is not None else ("pk IS NOT NULL", [])


def _event_keys(state: State, query: Query, limit: int | None) -> Iterator[tuple[Key, Ref]]:
    if query.type is not None and query.type not in ("event", "page", "screen"):
        return iter(())
    where, args = _owner(query)
    sql = f"SELECT timestamp, eid FROM events WHERE {where} AND timestamp>=?"
    args.append(query.since)
    for column, value in (("type", query.type), ("name", query.name)):
        if value is not None:
            sql, args = sql + f" AND {column}=?", [*args, value]
    more, more_args = _before("timestamp", "eid", EVENT, query.before)
    sql += more + " ORDER BY timestamp DESC, eid DESC"
    if limit is not None:
        sql, more_args = sql + " LIMIT ?", [*more_args, limit]
    rows = state.store.db.execute(sql, [*args, *more_args])
    return (((ts, EVENT, eid), None) for ts, eid in rows)


def _change_keys(state: State, query: Query, limit: int | None) -> Iterator[tuple[Key, Ref]]:
    if query.type is not None and query.type != "attribute_change":
        return iter(())
    where, args = _owner(query)
    sql = f"SELECT ts, cid FROM changes WHERE {where} AND ts>=?"
    args.append(query.since)
    if query.name is not None:
        sql, args = sql + " AND name=?", [*args, query.name]
    more, more_args = _before("ts", "cid", CHANGE, query.before)
    sql += more + " ORDER BY ts DESC, cid DESC"
    if limit is not None:
        sql, more_args = sql + " LIMIT ?", [*more_args, limit]
    rows = state.store.db.execute(sql, [*args, *more_args])
    return (((ts, CHANGE, cid), None) for ts, cid in rows)


# Message metrics as rows (seq, metric, ts, number), derived in SQL as messages.lifecycle derives
# them: a recorded history's entries (json_each, in the history's order), else the steps the
# time since the message started has reached. `number` orders one message's metrics.
METRIC_ROWS = """
SELECT seq, channel, template, j.key AS metric, j.value AS ts, seq*100000 + j.id AS number
FROM deliveries, json_each(deliveries.metrics) AS j
WHERE metrics IS NOT NULL AND {where} AND j.key != 'created' AND j.value <= :at
UNION ALL
SELECT seq, channel, template, 'drafted', CAST({created} AS INTEGER), seq*100000 + 1
FROM deliveries WHERE metrics IS NULL AND {where} AND {outcome}='drafted'
UNION ALL
SELECT seq, channel, template,
  CASE WHEN {outcome} IN ('undeliverable', 'failed', 'dropped') THEN {outcome} ELSE 'sent' END,
  CAST({start} + :sent AS INTEGER), seq*100000 + 1
FROM deliveries WHERE metrics IS NULL AND {where} AND {outcome}!='drafted'
  AND :at >= {start} + :sent
UNION ALL
SELECT seq, channel, template, {outcome}, CAST({start} + :delivered AS INTEGER), seq*100000 + 2
FROM deliveries WHERE metrics IS NULL AND {where}
  AND {outcome} NOT IN ('drafted', 'undeliverable', 'failed', 'dropped')
  AND :at >= {start} + :sent AND :at >= {start} + :delivered
"""
CREATED = "COALESCE(created_f, queued_at)"
# The message's own window: visible (created by now) and, for the workspace read, recent enough.
VISIBLE = f"{CREATED}<=:at AND {CREATED}>=:window"
KIND = (
    "metric || '_' || CASE channel "
    + " ".join(f"WHEN '{c}' THEN '{t}'" for c, t in MESSAGE_TYPE.items() if c != t)
    + " ELSE channel END"
)


def _metric_keys(state: State, query: Query, limit: int | None) -> Iterator[tuple[Key, Ref]]:
    """The selected message metrics' keys, newest first, from one SQL query."""
    if query.type is not None and (query.type in ("event", "page", "screen", "attribute_change")):
        return iter(())
    owner = "pk=:pk" if query.pk is not None else "pk IS NOT NULL"
    rows = METRIC_ROWS.format(
        where=f"{owner} AND {VISIBLE}",
        created=CREATED,
        start="COALESCE(start_f, queued_at)",
        outcome="COALESCE(outcome, 'delivered')",
    )
    documented = sorted(documented_types())
    marks = ",".join(f":k{i}" for i in range(len(documented)))
    timing = state.timing
    args: dict[str, Any] = {f"k{i}": kind for i, kind in enumerate(documented)}
    args.update(
        at=state.clock.now(),
        pk=query.pk,
        since=query.since,
        window=query.since - METRIC_LAG if query.since else 0,
        sent=timing.sent,
        delivered=timing.delivered,
    )
    sql = f"SELECT seq, metric, ts, number FROM ({rows}) WHERE ts>=:since AND {KIND} IN ({marks})"
    if query.type is not None:
        sql, args["type"] = sql + f" AND {KIND}=:type", query.type
    if query.name is not None:
        sql, args["name"] = sql + " AND template=:name", query.name
    if query.before is not None:
        ts, source, number = query.before
        args.update(before_ts=ts, before_number=number)
        sql += " AND ts<=:before_ts" if source < METRIC else ""
        sql += (
            " AND (ts<:before_ts OR (ts=:before_ts AND number<:before_number))"
            if source == METRIC
            else ""
        )
    sql += " ORDER BY ts DESC, number DESC"
    if limit is not None:
        sql, args["limit"] = sql + " LIMIT :limit", limit
    found = state.store.db.execute(sql, args)
    return (((ts, METRIC, number), (seq, metric, ts)) for seq, metric, ts, number in found)


def build(state: State, keys: list[tuple[Key, Ref]]) -> list[dict[str, Any]]:
    """The activities of these keys, in their order."""
    db = state.store.db
    people: dict[int, dict[str, Any]] = {}

    def who(owner: int) -> dict[str, Any]:
        if owner not in people:
            person = state.store.person(owner) or {"id": None, "email": None, "cio_id": None}
            people[owner] = {
                "customer_id": person["id"],
                "customer_identifiers": {k: person[k] for k in ("id", "email", "cio_id")},
            }
        return people[owner]

    built: dict[Key, dict[str, Any]] = {}
    eids = [key[2] for key, _ in keys if key[1] == EVENT]
    for eid, owner, name, kind, data, ts in _by_ids(
        db, "SELECT eid, pk, name, type, data, timestamp FROM events WHERE eid IN", eids
    ):
        row = {"id": f"ev{eid}", **who(owner), "type": kind, "name": name, "timestamp": ts}
        row["data"] = json.loads(data)
        if kind == "page":
            row["url"] = name
        built[(ts, EVENT, eid)] = row
    cids = [key[2] for key, _ in keys if key[1] == CHANGE]
    for cid, owner, name, old, new, ts in _by_ids(
        db, "SELECT cid, pk, name, old, new, ts FROM changes WHERE cid IN", cids
    ):
        row = {"id": f"ac{cid}", **who(owner), "type": "attribute_change", "name": name}
        row.update(timestamp=ts, data={name: {"from": old or "", "to": new or ""}})
        built[(ts, CHANGE, cid)] = row
    metric_keys = [(key, ref) for key, ref in keys if ref is not None]
    seqs = sorted({ref[0] for _, ref in metric_keys})
    deliveries = {d["seq"]: d for d in state.store.deliveries(seqs=seqs)} if seqs else {}
    at = state.clock.now()
    platforms: dict[str, str] = {}
    for key, (seq, metric, ts) in metric_keys:
        d = deliveries[seq]
        metrics, _ = lifecycle(state, d, at)
        mtype = MESSAGE_TYPE.get(d["channel"], d["channel"])
        delivery_type = DELIVERY_TYPE.get(d["channel"])
        if d["channel"] == "push":
            if d["pk"] not in platforms:
                platforms.update({x["id"]: x["platform"] for x in state.store.devices(d["pk"])})
            delivery_type = platforms.get(d["recipient"])
        row = {"id": f"dl{seq}:{metric}", **who(d["pk"]), "type": f"{metric}_{mtype}"}
        row.update(name=d["template"], timestamp=ts)
        if delivery_type is not None:
            row["delivery_type"] = delivery_type
        row["data"] = {
            "delivery_id": d["id"],
            "delivered": metrics.get("delivered"),
            "opened": "opened" in metrics,
        }
        row["delivery_id"] = d["id"]
        built[key] = row
    return [built[key] for key, _ in keys]


def _by_ids(db: Any, sql: str, ids: list[int]) -> Iterable[tuple[Any, ...]]:
    if not ids:
        return ()
    return db.execute(f"{sql} ({','.join('?' * len(ids))})", ids)


# -- the cursor: the last key shown ----------------------------------------------------------


def encode_key(key: Key) -> str:
    text = "act:" + ":".join(str(part) for part in key)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_key(cursor: str | None) -> Key | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, *parts = text.split(":")
        if prefix == "act" and len(parts) == 3:
            ts, source, number = (int(part) for part in parts)
            return ts, source, number
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(400, "invalid 'start' cursor")


def _page(state: State, req: Req, pk: int | None, since: float) -> dict[str, Any]:
    limit = page_limit(req, ACTIVITY_LIMIT)
    query = Query(
        pk=pk,
        since=since,
        type=req.query.get("type") or None,
        name=req.query.get("name") or None,
        before=decode_key(req.query.get("start")),
    )
    keys = newest_keys(state, query, limit + 1)  # one more: is there a next page?
    shown = keys[:limit]
    more = len(keys) > limit
    return {"activities": build(state, shown), "next": encode_key(shown[-1][0]) if more else ""}


@route("GET", "/v1/customers/{customer_id}/activities", APP, mutating=False)
def customer_activities(state: State, req: Req) -> tuple[int, Any]:
    return 200, _page(state, req, lookup_person(state, req), 0)


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
    return 200, _page(state, req, pk, since)


ROUTES = collect(globals())
