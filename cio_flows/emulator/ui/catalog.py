"""Segments, campaigns, broadcasts and the request log, as the web page lists them."""

from __future__ import annotations

import json
from typing import Any

from ..app_api import segment_rows
from ..broadcasts import TRIGGER_SQL, trigger_view
from ..messages import lifecycle
from ..state import State
from . import inbox

MEMBERS_SHOWN = 200
REQUESTS_PAGE = 200
FAMILIES = ("track", "pipelines", "app", "download", "unknown")


# -- segments --------------------------------------------------------------------------------


def segments(state: State) -> list[dict[str, Any]]:
    out = []
    for seg in segment_rows(state):
        sql, args = state.segments.segment_condition(seg["id"])
        count = state.store.db.execute(f"SELECT COUNT(*) FROM people p WHERE {sql}", args)
        out.append({**seg, "count": count.fetchone()[0]})
    return out


def segment(state: State, seg_id: int) -> dict[str, Any] | None:
    found = segment_rows(state, seg_id)
    if not found:
        return None
    sql, args = state.segments.segment_condition(seg_id)
    db = state.store.db
    count = db.execute(f"SELECT COUNT(*) FROM people p WHERE {sql}", args).fetchone()[0]
    members = db.execute(
        f"SELECT p.id, p.email, p.cio_id FROM people p WHERE {sql} ORDER BY p.pk DESC LIMIT ?",
        [*args, MEMBERS_SHOWN],
    ).fetchall()
    raw = db.execute("SELECT filter FROM segments WHERE id=?", (seg_id,)).fetchone()[0]
    return {
        **found[0],
        "filter": json.dumps(json.loads(raw), indent=2) if raw else None,
        "count": count,
        "members": [{"id": i, "email": e, "cio_id": c} for i, e, c in members],
    }


# -- campaigns and broadcasts ----------------------------------------------------------------


def programs(state: State) -> list[dict[str, Any]]:
    """Broadcasts, campaigns and newsletters with how many messages each has made."""
    db = state.store.db
    counts: dict[tuple[str, int], int] = {}
    for column, kind in (("broadcast_id", "broadcast"), ("campaign_id", "campaign")):
        for pid, n in db.execute(
            f"SELECT {column}, COUNT(*) FROM deliveries WHERE {column} IS NOT NULL"
            f" AND COALESCE(created_f, queued_at)<=? GROUP BY {column}",
            (state.clock.now(),),
        ):
            counts[(kind, pid)] = n
    out = [
        {"kind": "broadcast", "id": i, "name": n, "channel": c, "segment_id": s, "subject": subj}
        for i, n, c, s, subj in db.execute(
            "SELECT id, name, channel, segment_id, subject FROM broadcasts ORDER BY id"
        )
    ]
    for kind, pid, name, channel, details in db.execute(
        "SELECT kind, id, name, channel, details FROM programs ORDER BY kind, id"
    ):
        extra = json.loads(details)
        extra = extra if isinstance(extra, dict) else {}
        out.append(
            {
                "kind": kind,
                "id": pid,
                "name": name,
                "channel": channel,
                "segment_id": extra.get("segment"),
                "event": extra.get("event_name"),  # a campaign triggered by an event
                "steps": extra.get("steps"),  # a workspace campaign's waits and sends
                "filter": extra.get("filter"),
            }
        )
    for item in out:
        item["messages"] = counts.get((item["kind"], item["id"]), 0)
    return out


def program(state: State, kind: str, pid: int) -> dict[str, Any] | None:
    found = [p for p in programs(state) if p["kind"] == kind and p["id"] == pid]
    if not found:
        return None
    column = "broadcast_id" if kind == "broadcast" else "campaign_id"
    if kind == "newsletter":
        column = "newsletter_id"
    seqs = [
        s
        for (s,) in state.store.db.execute(
            f"SELECT seq FROM deliveries WHERE {column}=? ORDER BY seq DESC", (pid,)
        )
    ]
    return {
        **found[0],
        "metrics": metric_totals(state, seqs),
        "triggers": triggers(state, pid) if kind == "broadcast" else [],
        "rows": [r for r in inbox.rows(state, seqs[: inbox.PAGE])],
    }


def metric_totals(state: State, seqs: list[int]) -> dict[str, int]:
    """How many of these messages reached each metric so far."""
    at = state.clock.now()
    totals: dict[str, int] = {}
    for d in state.store.deliveries(seqs=seqs) if seqs else ():
        if d["created_f"] > at:
            continue
        for metric in lifecycle(state, d, at)[0]:
            totals[metric] = totals.get(metric, 0) + 1
    return dict(sorted(totals.items(), key=lambda kv: inbox.status_rank(kv[0])))


def triggers(state: State, broadcast_id: int) -> list[dict[str, Any]]:
    at = state.clock.now()
    found = state.store.db.execute(
        TRIGGER_SQL + " WHERE broadcast_id=? ORDER BY id DESC", (broadcast_id,)
    )
    out = []
    for row in found.fetchall():
        view = trigger_view(row, at)
        view["errors"] = json.loads(row[5])
        out.append(view)
    return out


# -- the request log -------------------------------------------------------------------------


def requests(
    state: State, family: str = "", q: str = "", before: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Request-log entries newest first (keys scrubbed from the query string too), and the
    seq to continue before."""
    out: list[dict[str, Any]] = []
    for entry in reversed(state.log):
        if before is not None and entry["seq"] >= before:
            continue
        if family and entry["family"] != family:
            continue
        if q and q not in entry["path"] and q not in entry.get("query", ""):
            continue
        if len(out) == REQUESTS_PAGE:
            return out, out[-1]["seq"]
        shown = {k: v for k, v in entry.items() if k != "_bytes"}
        shown["query"] = scrub(state, entry.get("query") or "")
        shown["body_text"] = _pretty(entry.get("body"))
        out.append(shown)
    return out, None


def scrub(state: State, text: str) -> str:
    for secret in state.secrets:
        text = text.replace(secret, "[REDACTED]")
    return text


def _pretty(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, indent=2, ensure_ascii=False, default=str)
