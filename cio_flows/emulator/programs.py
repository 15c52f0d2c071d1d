"""Campaigns, broadcasts and newsletters: GET /v1/campaigns[/{id}[/metrics]],
/v1/broadcasts[/{id}[/metrics]], /v1/newsletters[/{id}[/metrics]].

Campaigns and newsletters come from the generated demo (`demo: {people: N}`); broadcasts from
the workspace. Metrics are computed from the messages the emulator holds: `{"metric": {"series":
{metric: [count per period, oldest first]}}}`, a count of the messages whose metric fell in the
period. Periods (`period` hours|days|weeks|months, default days) start at 00:00 EST (UTC-5) and
end with the current one; `steps` is how many (at most 24/45/12/121, 0 or absent: the maximum,
at least 2; Customer.io's default is not documented). Campaign metrics need `version` (1 or 2;
v2 takes `res` for the period and answers the same shape: its real answer is UNCONFIRMED).
"""

from __future__ import annotations

import bisect
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from .core import APP, ApiError, Req, collect, route
from .messages import MESSAGE_TYPE, lifecycle
from .state import State

EST = timezone(timedelta(hours=-5))
MAX_STEPS = {"hours": 24, "days": 45, "weeks": 12, "months": 121}
SERIES = (
    "attempted",
    "bounced",
    "clicked",
    "converted",
    "created",
    "delivered",
    "drafted",
    "dropped",
    "failed",
    "opened",
    "sent",
    "spammed",
    "undeliverable",
    "unsubscribed",
)
TYPES = ("email", "webhook", "twilio", "whatsapp", "slack", "push", "in_app", "inbox")


def period_starts(period: str, steps: int, at: float) -> list[float]:
    """Unix starts of the last `steps` periods (oldest first), aligned at 00:00 EST."""
    now = datetime.fromtimestamp(at, EST)
    if period == "hours":
        current = now.replace(minute=0, second=0, microsecond=0)
        starts = [current - timedelta(hours=i) for i in range(steps)]
    elif period == "days":
        current = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [current - timedelta(days=i) for i in range(steps)]
    elif period == "weeks":  # weeks start on Sunday
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        current = day - timedelta(days=(day.weekday() + 1) % 7)
        starts = [current - timedelta(weeks=i) for i in range(steps)]
    else:
        starts = []
        year, month = now.year, now.month
        for _ in range(steps):
            starts.append(datetime(year, month, 1, tzinfo=EST))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return [s.timestamp() for s in reversed(starts)]


def series(state: State, where: str, args: list[Any], req: Req, period_key: str = "period"):
    period = req.query.get(period_key) or "days"
    if period not in MAX_STEPS:
        raise ApiError(400, f"'{period_key}' must be one of {', '.join(MAX_STEPS)}")
    raw = req.query.get("steps") or "0"
    if not raw.isdigit():
        raise ApiError(400, "'steps' must be a non-negative integer")
    steps = min(int(raw), MAX_STEPS[period]) or MAX_STEPS[period]
    steps = max(steps, 2)
    wanted_type = req.query.get("type")
    if wanted_type and wanted_type not in TYPES:
        raise ApiError(400, f"'type' must be one of {', '.join(TYPES)}")
    at = state.clock.now()
    starts = period_starts(period, steps, at)
    counts = {name: [0] * steps for name in SERIES}
    seqs = [
        s
        for (s,) in state.store.db.execute(
            f"SELECT seq FROM deliveries WHERE {where} AND COALESCE(created_f, queued_at) >= ?",
            [*args, starts[0] - 86400 * 7],
        )
    ]
    for d in state.store.deliveries(seqs=seqs) if seqs else ():
        if d["created_f"] > at:
            continue
        if wanted_type and MESSAGE_TYPE.get(d["channel"], d["channel"]) != wanted_type:
            continue
        metrics, _ = lifecycle(state, d, at)
        attempt = metrics.get("sent") or metrics.get("undeliverable") or metrics.get("failed")
        if attempt:
            metrics["attempted"] = attempt
        for name, ts in metrics.items():
            i = bisect.bisect_right(starts, ts) - 1
            if name in counts and i >= 0:
                counts[name][i] += 1
    return 200, {"metric": {"series": counts}}


def exists(state: State, kind: str, value: Any) -> bool:
    """Whether the workspace holds a campaign, broadcast, newsletter, transactional message or
    segment with this id (API-triggered broadcasts share the campaigns' id space)."""
    text = str(value)
    if not text.isdigit():
        return False
    key = int(text)
    db = state.store.db
    if kind == "campaign":
        sql = "SELECT 1 FROM programs WHERE kind='campaign' AND id=? UNION ALL "
        sql += "SELECT 1 FROM broadcasts WHERE id=?"
        return db.execute(sql, (key, key)).fetchone() is not None
    table = {"broadcast": "broadcasts", "transactional": "templates", "segment": "segments"}
    if kind in table:
        sql = f"SELECT 1 FROM {table[kind]} WHERE id=?"
        return db.execute(sql, (key,)).fetchone() is not None
    sql = "SELECT 1 FROM programs WHERE kind=? AND id=?"
    return db.execute(sql, (kind, key)).fetchone() is not None


def _int_id(req: Req, what: str) -> int:
    raw = req.params["program_id"]
    if not raw.isdigit():
        raise ApiError(404, f"{what} not found")
    return int(raw)


def _program(state: State, kind: str, program_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, name, channel, created_at, details FROM programs WHERE kind=?"
    args: list[Any] = [kind]
    if program_id is not None:
        sql, args = sql + " AND id=?", [*args, program_id]
    out = []
    for pid, name, channel, created, details in state.store.db.execute(sql + " ORDER BY id", args):
        extra = json.loads(details)
        item = {"id": pid, "deduplicate_id": f"{pid}:{created}", "name": name}
        item.update(created=created, updated=created, active=True, tags=[])
        if kind == "campaign":
            item.update(type=extra.get("type", "segment"), state="running")
            item["actions"] = [{"id": a, "type": t} for a, t in extra.get("actions", [])]
            item["first_started"] = created
            item["filter_segment_ids"] = []
            item["trigger_segment_ids"] = [extra["segment"]] if extra.get("segment") else []
            item["description"] = extra.get("description", "")
            item["tags"] = extra.get("tags", [])
            if extra.get("event_name"):  # an event-triggered workspace campaign (campaigns.py)
                item["event_name"] = extra["event_name"]
            item["filter_segment_ids"] = _segment_ids(extra.get("filter"))
        else:
            item.update(type=channel, content_ids=[extra.get("template")])  # never sent: no sent_at
            item["recipient_segment_ids"] = [5]
        out.append(item)
    return out


def _segment_ids(flt: Any) -> list[int]:
    """The segments a campaign filter names, as `filter_segment_ids` lists them."""
    if isinstance(flt, dict):
        found = [int(flt["segment"]["id"])] if isinstance(flt.get("segment"), dict) else []
        for value in flt.values():
            for part in value if isinstance(value, list) else [value]:
                found += _segment_ids(part)
        return sorted(set(found))
    return []


def _broadcasts(state: State, broadcast_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, name, channel, segment_id, created_at FROM broadcasts"
    rows = state.store.db.execute(
        sql + (" WHERE id=?" if broadcast_id is not None else " ORDER BY id"),
        (broadcast_id,) if broadcast_id is not None else (),
    ).fetchall()
    return [
        {
            "id": bid,
            "deduplicate_id": f"{bid}:{created}",
            "name": name,
            "type": "triggered_broadcast",
            "created": created,
            "updated": created,
            "active": True,
            "state": "running",
            "actions": [{"id": bid * 1000 + 1, "type": MESSAGE_TYPE.get(channel, channel)}],
            "msg_template_ids": [],
            "first_started": created,
            "tags": [],
            "recipient_segment_ids": [segment] if segment is not None else [],
        }
        for bid, name, channel, segment, created in rows
    ]


def _one(items: list[dict[str, Any]], key: str, what: str) -> tuple[int, Any]:
    if not items:
        raise ApiError(404, f"{what} not found")
    return 200, {key: items[0]}


@route("GET", "/v1/campaigns", APP, mutating=False)
def list_campaigns(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"campaigns": _program(state, "campaign")}


@route("GET", "/v1/campaigns/{program_id}", APP, mutating=False)
def get_campaign(state: State, req: Req) -> tuple[int, Any]:
    return _one(_program(state, "campaign", _int_id(req, "campaign")), "campaign", "campaign")


@route("GET", "/v1/campaigns/{program_id}/metrics", APP, mutating=False)
def campaign_metrics(state: State, req: Req) -> tuple[int, Any]:
    version = req.query.get("version") or "1"  # the document lists no parameter: v1 answers
    if version not in ("1", "2"):
        raise ApiError(400, "'version' must be 1 or 2")
    campaign_id = _int_id(req, "campaign")
    if not _program(state, "campaign", campaign_id):
        raise ApiError(404, "campaign not found")
    key = "res" if version == "2" else "period"
    return series(state, "campaign_id=?", [campaign_id], req, key)


@route("GET", "/v1/broadcasts", APP, mutating=False)
def list_broadcasts(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"broadcasts": _broadcasts(state)}


@route("GET", "/v1/broadcasts/{program_id}", APP, mutating=False)
def get_broadcast(state: State, req: Req) -> tuple[int, Any]:
    return _one(_broadcasts(state, _int_id(req, "broadcast")), "broadcast", "broadcast")


@route("GET", "/v1/broadcasts/{program_id}/metrics", APP, mutating=False)
def broadcast_metrics(state: State, req: Req) -> tuple[int, Any]:
    broadcast_id = _int_id(req, "broadcast")
    if not _broadcasts(state, broadcast_id):
        raise ApiError(404, "broadcast not found")
    return series(state, "broadcast_id=?", [broadcast_id], req)


@route("GET", "/v1/newsletters", APP, mutating=False)
def list_newsletters(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"newsletters": _program(state, "newsletter")}


@route("GET", "/v1/newsletters/{program_id}", APP, mutating=False)
def get_newsletter(state: State, req: Req) -> tuple[int, Any]:
    found = _program(state, "newsletter", _int_id(req, "newsletter"))
    return _one(found, "newsletter", "newsletter")


@route("GET", "/v1/newsletters/{program_id}/metrics", APP, mutating=False)
def newsletter_metrics(state: State, req: Req) -> tuple[int, Any]:
    newsletter_id = _int_id(req, "newsletter")
    if not _program(state, "newsletter", newsletter_id):
        raise ApiError(404, "newsletter not found")
    return series(state, "newsletter_id=?", [newsletter_id], req)


ROUTES = collect(globals())
