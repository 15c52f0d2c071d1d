"""The inbox's rows and one message's page, read from the emulator's state.

Rows are found in SQL (channel, person, template, search) newest first; a status filter needs
each message's lifecycle, which is derived from the clock, so it is applied in Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..messages import OUTCOME_METRICS, lifecycle
from ..sends import CHANNELS
from ..state import State
from . import content

PAGE = 100
STATUSES = ("created", "drafted", *OUTCOME_METRICS)
_STATUS_ORDER = {name: i for i, name in enumerate(STATUSES)}


@dataclass(frozen=True)
class InboxFilter:
    channel: str = ""
    person: str = ""
    template: str = ""
    status: str = ""
    q: str = ""
    before: int | None = None  # a delivery seq: older messages only (the next page)

    @classmethod
    def from_query(cls, query: Any) -> InboxFilter:
        before = query.get("before", "")
        return cls(
            channel=query.get("channel", "") if query.get("channel") in CHANNELS else "",
            person=query.get("person", "").strip(),
            template=query.get("template", "").strip(),
            status=query.get("status", "") if query.get("status") in STATUSES else "",
            q=query.get("q", "").strip(),
            before=int(before) if before.isdigit() else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.channel or self.person or self.template or self.status or self.q)


def like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _candidates(state: State, f: InboxFilter) -> list[tuple[Any, ...]]:
    sql = (
        "SELECT d.seq, d.created_f, d.start_f, d.outcome, d.failure, d.metrics, d.queued_at"
        " FROM deliveries d LEFT JOIN people p ON p.pk=d.pk"
        " LEFT JOIN templates t ON t.id=d.template_id WHERE 1"
    )
    args: list[Any] = []
    if f.channel:
        sql, args = sql + " AND d.channel=?", [*args, f.channel]
    if f.person:
        sql += " AND (p.id=? OR p.email=? OR p.cio_id=? OR d.recipient=?)"
        args += [f.person] * 4
    if f.template:
        sql += " AND (CAST(d.template_id AS TEXT)=? OR t.trigger=? OR t.name=? OR d.template=?)"
        args += [f.template] * 4
    if f.q:
        pattern = like(f.q)
        columns = (
            "d.recipient",
            "d.subject",
            "d.content",
            "d.body",
            "d.template",
            "p.id",
            "p.email",
            "t.name",
        )
        sql += " AND (d.delivery_id=? OR " + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns)
        sql += ")"
        args += [f.q, *([pattern] * len(columns))]
    if f.before is not None:
        sql, args = sql + " AND d.seq<?", [*args, f.before]
    return state.store.db.execute(sql + " ORDER BY d.seq DESC", args).fetchall()


def status_rank(metric: str) -> int:
    return _STATUS_ORDER.get(metric, len(_STATUS_ORDER))


def status_of(metrics: dict[str, int]) -> str:
    """The furthest point of a message's lifecycle (metrics outside it, such as the demo's
    `human_opened`, show in the timeline only)."""
    known = [m for m in metrics if m in _STATUS_ORDER]
    return max(known, key=lambda m: (status_rank(m), metrics[m]), default="created")


def timeline(metrics: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(metrics.items(), key=lambda kv: (kv[1], status_rank(kv[0])))


def messages(
    state: State, f: InboxFilter, limit: int = PAGE
) -> tuple[list[dict[str, Any]], int | None]:
    """(rows newest first, the seq to continue before, or None on the last page)."""
    at = state.clock.now()
    picked: list[int] = []
    more = None
    for seq, created_f, start_f, outcome, failure, fixed, queued in _candidates(state, f):
        created_f = created_f if created_f is not None else float(queued)
        if created_f > at:
            continue  # a broadcast's messages exist once its trigger is processed
        if f.status:
            d = {"created_f": created_f, "start_f": start_f or created_f, "outcome": outcome}
            d.update(failure=failure, metrics=json.loads(fixed) if fixed else None)
            if status_of(lifecycle(state, d, at)[0]) != f.status:
                continue
        if len(picked) == limit:
            more = picked[-1]
            break
        picked.append(seq)
    return rows(state, picked, at), more


def rows(state: State, seqs: list[int], at: float | None = None) -> list[dict[str, Any]]:
    """Inbox rows for delivery keys, in the order given."""
    if not seqs:
        return []
    at = state.clock.now() if at is None else at
    by_seq = {d["seq"]: d for d in state.store.deliveries(seqs=seqs)}
    names = template_names(state)
    programs = program_names(state)
    out = []
    for seq in seqs:
        d = by_seq[seq]
        metrics, failure = lifecycle(state, d, at)
        person = state.store.person(d["pk"]) if d["pk"] is not None else None
        template = names.get(d["template_id"]) if d["template_id"] is not None else None
        out.append(
            {
                "seq": seq,
                "id": d["id"],
                "channel": d["channel"],
                "recipient": d["recipient"] or "",
                "person": person,
                "title": content.title(d, template),
                "template": template or d["template"],
                "template_id": d["template_id"],
                "program": _program(d, programs),
                "status": status_of(metrics),
                "timeline": timeline(metrics),
                "failure": failure,
                "created": d["created_f"],
            }
        )
    return out


def _program(d: dict[str, Any], programs: dict[tuple[str, int], str]) -> dict[str, Any] | None:
    for kind, key in (("broadcast", "broadcast_id"), ("campaign", "campaign_id")):
        if d.get(key) is not None:
            name = programs.get((kind, d[key])) or f"{kind} {d[key]}"
            return {"kind": kind, "id": d[key], "name": name}
    return None


def template_names(state: State) -> dict[int, str]:
    rows = state.store.db.execute("SELECT id, name FROM templates")
    return {tid: name for tid, name in rows}


def templates(state: State) -> list[dict[str, Any]]:
    rows = state.store.db.execute("SELECT id, trigger, name, channel FROM templates ORDER BY id")
    return [{"id": r[0], "trigger": r[1], "name": r[2], "channel": r[3]} for r in rows]


def program_names(state: State) -> dict[tuple[str, int], str]:
    out = {
        ("broadcast", i): n for i, n in state.store.db.execute("SELECT id, name FROM broadcasts")
    }
    for kind, pid, name in state.store.db.execute("SELECT kind, id, name FROM programs"):
        out.setdefault((kind, pid), name)
    return out


def message(state: State, delivery_id: str) -> dict[str, Any] | None:
    """Everything the message page shows, or None when there is no such (visible) message."""
    found = state.store.deliveries(delivery_id=delivery_id)
    at = state.clock.now()
    if not found or found[0]["created_f"] > at:
        return None
    d = found[0]
    row = rows(state, [d["seq"]], at)[0]
    body = content.request_body(d)
    row.update(
        html=content.email_html(d) if d["channel"] == "email" else None,
        text=content.email_text(d) if d["channel"] == "email" else "",
        preview=content.preview(d, row["template"]),
        trigger_data=body.get("message_data"),
        identifiers=d["identifiers"],
        kind=d["kind"],
        request=creating_request(state, d),
        send_at=d["send_at"],
        headers={k: body.get(k) for k in ("from", "to", "cc", "bcc", "reply_to") if body.get(k)},
    )
    return row


def creating_request(state: State, d: dict[str, Any]) -> dict[str, Any] | None:
    """The request-log entry that created the message: the newest send on its channel's path
    with the same body, or its broadcast's trigger request. (Matched on content, not time:
    the emulator's clock can be moved.)"""
    if d["kind"] == "transactional":
        path, body = f"/v1/send/{d['channel']}", d["body"]
    elif d.get("trigger_id") is not None:
        found = state.store.db.execute(
            "SELECT body FROM triggers WHERE id=?", (d["trigger_id"],)
        ).fetchone()
        if found is None:
            return None
        path, body = f"/{d['broadcast_id']}/triggers", json.loads(found[0])
    else:
        return None
    for entry in reversed(state.log):
        if (
            entry["path"].endswith(path)
            and entry.get("status") == 200
            and entry.get("body") == body
        ):
            found_entry: dict[str, Any] = entry
            return found_entry
    return None
