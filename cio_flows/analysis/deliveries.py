"""Messages (deliveries), campaign / broadcast / newsletter metrics and activities as DataFrames.

`messages()` reads GET /v1/messages (1,000 a page) or, for one campaign, broadcast, newsletter,
action or transactional template with many messages, a deliveries export; the same frame either
way: one row per message, its metric times as UTC datetimes (NaT when not reached).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from ..errors import CioFlowsError
from ..wire.kinds import Request
from ..wire.types import path_id
from . import exports, reads

TEXT_COLUMNS = ("id", "channel", "type", "customer_id", "cio_id", "email", "recipient", "subject")
ID_COLUMNS = ("template_id", "campaign_id", "broadcast_id", "newsletter_id", "action_id")
METRIC_COLUMNS = (
    "created",
    "drafted",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "bounced",
    "spammed",
    "unsubscribed",
    "dropped",
    "failed",
    "undeliverable",
)
MESSAGE_COLUMNS = (*TEXT_COLUMNS, *ID_COLUMNS, "failure_message", *METRIC_COLUMNS)
CHANNEL = {"twilio": "sms", "inbox": "inbox_message"}  # App API message type -> channel
PROGRAMS = ("campaign_id", "broadcast_id", "newsletter_id", "action_id", "template_id")
MESSAGES_PAGE = 1000
EST = timezone(timedelta(hours=-5))  # metric periods start at 00:00 EST
MAX_STEPS = {"hours": 24, "days": 45, "weeks": 12, "months": 121}


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def api_record(message: dict[str, Any]) -> dict[str, Any]:
    """One GET /v1/messages item as a row."""
    ident = message.get("customer_identifiers") or {}
    metrics = message.get("metrics") or {}
    kind = _text(message.get("type"))
    template = message.get("message_template_id", message.get("msg_template_id"))
    row = {
        "id": _text(message.get("id")),
        "channel": CHANNEL.get(kind, kind) if kind else None,
        "type": kind,
        "customer_id": _text(message.get("customer_id") or ident.get("id")),
        "cio_id": _text(ident.get("cio_id")),
        "email": _text(ident.get("email")),
        "recipient": _text(message.get("recipient")),
        "subject": _text(message.get("subject")),
        "template_id": _int(template),
        "failure_message": _text(message.get("failure_message")),
    }
    row.update({name: _int(message.get(name)) for name in ID_COLUMNS if name != "template_id"})
    row.update({name: _int(metrics.get(name)) for name in METRIC_COLUMNS})
    return row


def export_records(data: bytes) -> list[dict[str, Any]]:
    """The rows of a deliveries export file (CSV with a header row)."""
    rows = []
    for item in csv.DictReader(io.StringIO(data.decode("utf-8"))):
        kind = _text(item.get("type"))
        row: dict[str, Any] = {
            name: _text(item.get(name)) for name in TEXT_COLUMNS if name != "channel"
        }
        row["channel"] = CHANNEL.get(kind, kind) if kind else None
        row["template_id"] = _int(item.get("message_template_id"))
        row["failure_message"] = _text(item.get("failure_message"))
        row.update({name: _int(item.get(name)) for name in ID_COLUMNS if name != "template_id"})
        row.update({name: _int(item.get(name)) for name in METRIC_COLUMNS})
        rows.append(row)
    return rows


def messages_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Typed: text as strings, ids as Int64, metric times as UTC datetimes."""
    records = list(records)
    frame = pd.DataFrame({c: [r.get(c) for r in records] for c in MESSAGE_COLUMNS})
    for name in (*TEXT_COLUMNS, "failure_message"):
        frame[name] = frame[name].astype("str")  # missing stays missing
    for name in ID_COLUMNS:
        frame[name] = pd.array([r.get(name) for r in records], dtype="Int64")
    for name in METRIC_COLUMNS:
        seconds = pd.array([r.get(name) for r in records], dtype="Int64")
        frame[name] = pd.to_datetime(seconds, unit="s", utc=True)
    return frame


def with_template_labels(frame: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """Add `template`: "Welcome email (1)" for a transactional template (name from `names`),
    "<subject> (7)" for another template, "template 7" when neither is known, else the subject,
    so a funnel per template groups every send, transactional ones included."""
    labels: list[str | None] = []
    for template_id, subject in zip(frame["template_id"], frame["subject"], strict=True):
        subject = subject if isinstance(subject, str) and subject not in ("", "None") else None
        if pd.isna(template_id):
            labels.append(subject)
            continue
        name = names.get(int(template_id)) or subject
        labels.append(f"{name} ({template_id})" if name else f"template {template_id}")
    frame["template"] = pd.array(labels, dtype="string")
    return frame


def period_starts(period: str, steps: int, at: datetime) -> list[datetime]:
    """Starts of the last `steps` periods, oldest first, at 00:00 EST as Customer.io counts."""
    now = at.astimezone(EST)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "hours":
        current = now.replace(minute=0, second=0, microsecond=0)
        starts = [current - timedelta(hours=i) for i in range(steps)]
    elif period == "days":
        starts = [day - timedelta(days=i) for i in range(steps)]
    elif period == "weeks":
        sunday = day - timedelta(days=(day.weekday() + 1) % 7)
        starts = [sunday - timedelta(weeks=i) for i in range(steps)]
    else:
        starts, year, month = [], now.year, now.month
        for _ in range(steps):
            starts.append(datetime(year, month, 1, tzinfo=EST))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def metrics_frame(body: dict[str, Any], period: str, at: datetime) -> pd.DataFrame:
    """{"metric": {"series": {name: [count, ...]}}} -> one row per period, one column per
    metric, indexed by the period's start (EST)."""
    series = ((body or {}).get("metric") or {}).get("series") or {}
    length = max((len(v) for v in series.values()), default=0)
    index = pd.DatetimeIndex(period_starts(period, length, at), name="period")
    frame = pd.DataFrame({k: pd.array(v, dtype="int64") for k, v in sorted(series.items())})
    frame.index = index
    return frame


class DeliveryReads:
    """Workspace methods over messages and metrics (mixed into Workspace)."""

    _send: Callable[[Request], Any]
    _bar: Callable[..., Any]
    _cached: Callable[..., pd.DataFrame]
    _fresh: Callable[..., Any]
    export_above: int

    def messages(
        self,
        *,
        campaign_id: int | None = None,
        broadcast_id: int | None = None,
        newsletter_id: int | None = None,
        action_id: int | None = None,
        template_id: int | None = None,
        type: str | None = None,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
        via: str = "auto",
        refresh: bool = False,
        max_age: Any = None,
    ) -> pd.DataFrame:
        """One row per message (newest first): id, channel, type, recipient, template_id,
        campaign/broadcast/newsletter/action ids, failure_message and one datetime column per
        metric. via="export" needs exactly one of campaign_id, broadcast_id, newsletter_id,
        action_id or template_id (a transactional template); "api" pages GET /v1/messages;
        "auto" switches to an export when there are many."""
        if via not in ("auto", "api", "export"):
            raise ValueError(f"via must be auto, api or export, not {via!r}")
        ids = {"campaign_id": campaign_id, "broadcast_id": broadcast_id}
        ids.update(newsletter_id=newsletter_id, action_id=action_id, template_id=template_id)
        given = {k: v for k, v in ids.items() if v is not None}
        window = {"start": _unix(start), "end": _unix(end)}
        if via == "export" and len(given) != 1:
            raise ValueError("via='export' needs exactly one of " + ", ".join(PROGRAMS))
        params = {**given, **window, "type": type}

        def read() -> pd.DataFrame:
            records = None
            if via != "export":
                records = self._messages_api(given, window, type, allow_export=via == "auto")
            if records is None:
                records = self._messages_export(given, window)
                records.reverse()  # newest first, as the API lists them
            if type:
                records = [r for r in records if r["type"] == type]
            frame = messages_frame(records)
            has_templates = bool(frame["template_id"].notna().any())
            return with_template_labels(frame, self.template_names() if has_templates else {})

        return self._cached("messages", params, refresh, read, max_age)

    def template_names(self) -> dict[int, str]:
        """Transactional template id -> name (GET /v1/transactional); empty when unreadable."""
        try:
            body = self._send(Request("app", "GET", "/v1/transactional")).body
        except CioFlowsError:
            return {}  # labels fall back to "template <id>"
        items = body.get("messages") if isinstance(body, dict) else None
        return {
            int(item["id"]): str(item.get("name") or "")
            for item in items or []
            if isinstance(item, dict) and str(item.get("id", "")).isdigit()
        }

    def _messages_api(self, given, window, kind, allow_export: bool):
        query = [(k, str(v)) for k, v in given.items() if k != "template_id"]
        query += [(f"{k}_ts", str(v)) for k, v in window.items() if v is not None]
        if kind:
            query.append(("type", kind))
        records: list[dict[str, Any]] = []
        bar = self._bar(None, "messages", "message")

        def page(cursor: str) -> Request:
            more = [("start", cursor)] if cursor else []
            params = (*query, ("limit", str(MESSAGES_PAGE)), *more)
            return Request("app", "GET", "/v1/messages", params=tuple(params))

        try:
            for body in reads.pages(self._send, page, "messages"):
                found = [api_record(m) for m in body.get("messages") or []]
                records.extend(found)
                bar.update(len(found))
                large = len(records) >= self.export_above and body.get("next")
                if allow_export and large and len(given) == 1:
                    return None  # many more: an export is cheaper
        finally:
            bar.close()
        if given.get("template_id") is not None:
            records = [r for r in records if r["template_id"] == given["template_id"]]
        return records

    def _messages_export(self, given, window) -> list[dict[str, Any]]:
        (key, value), *_ = given.items()
        key = {"template_id": "transactional_message_id", "broadcast_id": "campaign_id"}.get(
            key, key
        )
        body = {key: value, **{k: v for k, v in window.items() if v is not None}}
        data = exports.run(self._send, exports.deliveries_request(body), self._bar)
        return export_records(data)

    def _metrics(
        self, kind: str, program_id: int, period: str, steps: int, refresh: bool, max_age: Any
    ) -> pd.DataFrame:
        if period not in MAX_STEPS:
            raise ValueError(f"period must be one of {', '.join(MAX_STEPS)}, not {period!r}")
        params = {"id": program_id, "period": period, "steps": steps}

        def read() -> pd.DataFrame:
            query = [("period", period), ("steps", str(steps))]
            if kind == "campaigns":
                query.insert(0, ("version", "1"))  # v2's answer is not documented
            path = f"/v1/{kind}/{path_id(program_id)}/metrics"
            body = self._send(Request("app", "GET", path, params=tuple(query))).body
            return metrics_frame(body, period, datetime.now(EST))

        return self._cached(f"{kind}_metrics", params, refresh, read, max_age)

    def campaign_metrics(
        self,
        campaign_id: int,
        period: str = "days",
        steps: int = 0,
        refresh: bool = False,
        max_age: Any = None,
    ) -> pd.DataFrame:
        """Counts per period (rows, oldest first) and metric (columns: sent, delivered,
        opened, clicked, bounced, ...); steps=0: as many periods as the API gives."""
        return self._metrics("campaigns", campaign_id, period, steps, refresh, max_age)

    def broadcast_metrics(
        self,
        broadcast_id: int,
        period: str = "days",
        steps: int = 0,
        refresh: bool = False,
        max_age: Any = None,
    ) -> pd.DataFrame:
        return self._metrics("broadcasts", broadcast_id, period, steps, refresh, max_age)

    def newsletter_metrics(
        self,
        newsletter_id: int,
        period: str = "days",
        steps: int = 0,
        refresh: bool = False,
        max_age: Any = None,
    ) -> pd.DataFrame:
        return self._metrics("newsletters", newsletter_id, period, steps, refresh, max_age)

    def programs(self, kind: str) -> pd.DataFrame:
        """kind: campaigns, broadcasts or newsletters: id, name, type, created (datetime)."""
        if kind not in ("campaigns", "broadcasts", "newsletters"):
            raise ValueError("kind must be campaigns, broadcasts or newsletters")
        items = (self._send(Request("app", "GET", f"/v1/{kind}")).body or {}).get(kind) or []
        frame = pd.DataFrame(items).reindex(columns=["id", "name", "type", "created"])
        frame["created"] = pd.to_datetime(
            pd.to_numeric(frame["created"]), unit="s", utc=True, errors="coerce"
        )
        return self._fresh(frame)

    def activities(
        self,
        type: str | None = None,
        name: str | None = None,
        customer_id: str | None = None,
        limit: int = 1000,
        refresh: bool = False,
        max_age: Any = None,
    ) -> pd.DataFrame:
        """The workspace's most recent activities (GET /v1/activities, 30 days guaranteed),
        newest first: timestamp, type, name, customer_id, cio_id, delivery_id, delivery_type,
        data."""
        params = {"type": type, "name": name, "customer_id": customer_id, "limit": limit}

        def read() -> pd.DataFrame:
            query = [(k, str(v)) for k, v in params.items() if v is not None and k != "limit"]
            query.append(("limit", str(min(limit, reads.ACTIVITIES_PAGE))))
            rows: list[dict[str, Any]] = []

            def page(cursor: str) -> Request:
                more = (("start", cursor),) if cursor else ()
                return Request("app", "GET", "/v1/activities", params=(*query, *more))

            for body in reads.pages(self._send, page, "activities"):
                rows.extend(body.get("activities") or [])
                if len(rows) >= limit:
                    break
            for row in rows:
                row["cio_id"] = (row.get("customer_identifiers") or {}).get("cio_id")
            columns = ["timestamp", "type", "name", "customer_id", "cio_id"]
            columns += ["delivery_id", "delivery_type", "data"]
            frame = pd.DataFrame(rows[:limit]).reindex(columns=columns)
            frame["timestamp"] = pd.to_datetime(
                pd.to_numeric(frame["timestamp"]), unit="s", utc=True
            )
            return frame

        return self._cached("activities", params, refresh, read, max_age)


def _unix(value: datetime | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value.timestamp())
