"""App API exports: POST /v1/exports/customers and /v1/exports/deliveries, GET /v1/exports,
/v1/exports/{id} and /v1/exports/{id}/download, and the signed file URL the emulator serves.

An export is computed when it is requested (a snapshot) and shows `pending`, with `total` 0,
for `DeliveryTiming.export` seconds (1 s by default), then `done` with its row count. Its
download answers `{"url"}`, a link to this emulator signed with a key of this process and valid
for 15 minutes, as Customer.io's is; the link needs no Authorization header.

The file is a gzip-compressed CSV with a header row (Customer.io's file format is not
documented: UNCONFIRMED). People: `cio_id`, `id`, `email`, `_created_in_customerio_at`,
`unsubscribed`, then every attribute (or only `attributes`, when given), values as the
attributes endpoint shows them, empty when unset. Deliveries: the message object's fields, its
metrics as unix-time columns, empty when not reached. Asking for the download before `done`
answers 400 (Customer.io's answer is UNCONFIRMED).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .core import APP, ApiError, Req, collect, require_object, route
from .filters import FilterError
from .messages import MESSAGE_TYPE, OUTCOME_METRICS, lifecycle
from .programs import exists
from .records import dumps
from .state import State
from .store import inserted_id

URL_LIFETIME = 15 * 60
DOWNLOAD_PATH = "/_downloads/exports/{export_id}.csv.gz"
_SIGNING_KEY = os.urandom(32)  # per process: links die with the emulator
PROGRAM_KEYS = ("newsletter_id", "campaign_id", "action_id", "transactional_message_id")
DELIVERY_FIELDS = (
    "id",
    "type",
    "message_template_id",
    "campaign_id",
    "broadcast_id",
    "newsletter_id",
    "action_id",
    "customer_id",
    "cio_id",
    "email",
    "recipient",
    "subject",
    "failure_message",
)
DELIVERY_METRICS = ("created", "drafted", *OUTCOME_METRICS)
TWELVE_MONTHS = 366 * 86400
SIX_MONTHS = 183 * 86400


def _csv_gz(header: list[str], rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode("utf-8"), compresslevel=5, mtime=0)


def _people_file(state: State, condition: tuple[str, list], wanted: list[str] | None):
    sql, args = condition
    db = state.store.db
    people = db.execute(
        f"SELECT p.pk, p.cio_id, p.id, p.email, p.created_at FROM people p WHERE {sql} "
        "ORDER BY p.pk",
        args,
    ).fetchall()
    index = {row[0]: i for i, row in enumerate(people)}
    values: list[dict[str, str]] = [{} for _ in people]
    for pk, name, text in db.execute("SELECT pk, name, str FROM attrs"):
        i = index.get(pk)
        if i is not None:
            values[i][name] = text
    fixed = ["cio_id", "id", "email", "_created_in_customerio_at", "unsubscribed"]
    names = {n for v in values for n in v} - set(fixed)
    extra = sorted(names) if wanted is None else [n for n in wanted if n not in fixed]
    rows = []
    for (_pk, cio_id, id_, email, created), attrs in zip(people, values, strict=True):
        head = [cio_id, id_ or "", email or "", str(created), attrs.get("unsubscribed", "false")]
        rows.append(head + [attrs.get(name, "") for name in extra])
    return _csv_gz(fixed + extra, rows), len(rows)


def _deliveries_file(state: State, body: dict[str, Any]):
    used = [k for k in PROGRAM_KEYS if body.get(k) is not None]
    if len(used) != 1:
        raise ApiError(400, f"give exactly one of {', '.join(PROGRAM_KEYS)}")
    key = used[0]
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{key}' must be an integer")
    kind = {"campaign_id": "campaign", "newsletter_id": "newsletter"}.get(key)
    if key == "transactional_message_id" and state.templates:
        kind = "transactional"
    if kind is not None and not exists(state, kind, value):
        raise ApiError(400, f"{key} {value} does not exist")
    at = state.clock.now()
    end = body.get("end", int(at) + 1)
    start = body.get("start", end - SIX_MONTHS)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise ApiError(400, "'start' and 'end' must be unix times")
    start = max(start, end - TWELVE_MONTHS)  # longer ranges are cut to 12 months
    column = {"transactional_message_id": "template_id"}.get(key, key)
    where = f"{column}=?"
    if key == "campaign_id":  # broadcasts are campaigns too (one id space)
        where = "(campaign_id=? OR broadcast_id=?)"
    args: list[Any] = [value, value] if key == "campaign_id" else [value]
    if key == "transactional_message_id":
        where += " AND kind='transactional'"
    if body.get("template_id") is not None:
        where, args = where + " AND template_id=?", [*args, body["template_id"]]
    drafts = bool(body.get("drafts"))
    where += " AND (outcome='drafted')=?"
    seqs = [
        s
        for (s,) in state.store.db.execute(
            f"SELECT seq FROM deliveries WHERE {where} AND "
            "COALESCE(created_f, queued_at) BETWEEN ? AND ? ORDER BY seq",
            [*args, 1 if drafts else 0, start, end],
        )
    ]
    metric = body.get("metric")
    if metric is not None and metric not in DELIVERY_METRICS and metric != "attempted":
        raise ApiError(400, f"'metric' must be one of {', '.join(DELIVERY_METRICS)}")
    people = {
        pk: (id_, email, cio_id)
        for pk, id_, email, cio_id in state.store.db.execute(
            "SELECT pk, id, email, cio_id FROM people"
        )
    }
    rows = []
    for d in state.store.deliveries(seqs=seqs) if seqs else ():
        if d["created_f"] > at:
            continue
        metrics, failure = lifecycle(state, d, at)
        if metric and metric not in metrics:
            continue
        id_, email, cio_id = people.get(d["pk"]) or (
            d["identifiers"].get(k) for k in ("id", "email", "cio_id")
        )
        fields = [
            d["id"],
            MESSAGE_TYPE.get(d["channel"], d["channel"]),
            d["template_id"],
            d["campaign_id"],
            d["broadcast_id"],
            d["newsletter_id"],
            d["action_id"],
            id_,
            cio_id,
            email,
            d["recipient"],
            d["subject"],
            failure,
        ]
        stamps = [metrics.get(m) for m in DELIVERY_METRICS]
        rows.append(["" if v is None else v for v in fields + stamps])
    return _csv_gz([*DELIVERY_FIELDS, *DELIVERY_METRICS], rows), len(rows)


def _create(state: State, kind: str, body: dict[str, Any], data: bytes, total: int):
    now = state.clock.now()
    export_id = inserted_id(
        state.store.db.execute(
            "INSERT INTO exports(type, body, created_f, ready_f, total, file) VALUES(?,?,?,?,?,?)",
            (kind, dumps(body), now, now + state.timing.export, total, data),
        )
    )
    return 200, {"export": _view(_row(state, export_id), now)}


@route("POST", "/v1/exports/customers", APP)
def export_customers(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    if body.get("filters") is None:
        raise ApiError(400, "'filters' is required")
    wanted = body.get("attributes")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted)
    ):
        raise ApiError(400, "'attributes' must be a list of attribute names")
    try:
        condition = state.segments.condition(body["filters"])
    except FilterError as exc:
        raise ApiError(400, f"invalid filters: {exc}") from None
    data, total = _people_file(state, condition, wanted)
    return _create(state, "customers", body, data, total)


@route("POST", "/v1/exports/deliveries", APP)
def export_deliveries(state: State, req: Req) -> tuple[int, Any]:
    body = require_object(req.body)
    data, total = _deliveries_file(state, body)
    return _create(state, "deliveries", body, data, total)


EXPORT_SQL = "SELECT id, type, body, created_f, ready_f, total, downloads FROM exports"


def _row(state: State, export_id: int) -> tuple:
    row = state.store.db.execute(EXPORT_SQL + " WHERE id=?", (export_id,)).fetchone()
    if row is None:
        raise ApiError(404, "export not found")
    return row


def _view(row: tuple, at: float) -> dict[str, Any]:
    export_id, kind, _body, created, ready, total, downloads = row
    done = at >= ready
    return {
        "id": export_id,
        "user_id": 0,
        "user_email": "api@emulator.local",
        "total": total if done else 0,
        "deduplicate_id": f"{export_id}:{int(created)}",
        "type": kind,
        "failed": False,
        "description": f"{kind} export via the App API",
        "downloads": downloads,
        "created_at": int(created),
        "updated_at": int(ready if done else created),
        "status": "done" if done else "pending",
    }


def _export_id(req: Req) -> int:
    raw = req.params["export_id"]
    if not raw.isdigit():
        raise ApiError(404, "export not found")
    return int(raw)


@route("GET", "/v1/exports", APP, mutating=False)
def list_exports(state: State, req: Req) -> tuple[int, Any]:
    at = state.clock.now()
    rows = state.store.db.execute(EXPORT_SQL + " ORDER BY id").fetchall()
    return 200, {"exports": [_view(r, at) for r in rows]}


@route("GET", "/v1/exports/{export_id}", APP, mutating=False)
def get_export(state: State, req: Req) -> tuple[int, Any]:
    return 200, {"export": _view(_row(state, _export_id(req)), state.clock.now())}


@route("GET", "/v1/exports/{export_id}/download", APP)
def download_url(state: State, req: Req) -> tuple[int, Any]:
    row = _row(state, _export_id(req))
    if state.clock.now() < row[4]:
        raise ApiError(400, "the export is not done yet")
    state.store.db.execute("UPDATE exports SET downloads=downloads+1 WHERE id=?", (row[0],))
    expires = int(state.clock.now()) + URL_LIFETIME
    path = DOWNLOAD_PATH.format(export_id=row[0])
    return 200, {"url": f"{req.root}{path}?expires={expires}&signature={_sign(path, expires)}"}


def _sign(path: str, expires: int) -> str:
    message = f"{path}\n{expires}".encode()
    return hmac.new(_SIGNING_KEY, message, hashlib.sha256).hexdigest()


def download_routes(state: State) -> list[Route]:
    """The signed file link: no Authorization header (as a storage link), logged as
    family `download`."""

    async def download(request: Request) -> Response:
        path = request.url.path
        entry = {"time": time.time(), "method": "GET", "path": path, "family": "download"}
        entry["query"] = "expires=...&signature=..."  # the signature is a credential
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        status, data = 200, b""
        if not expires.isdigit() or not hmac.compare_digest(signature, _sign(path, int(expires))):
            status, data = 403, b"signature does not match"
        elif int(expires) < state.clock.now():
            status, data = 403, b"the link has expired"
        else:
            found = state.store.db.execute(
                "SELECT file FROM exports WHERE id=?", (int(request.path_params["export_id"]),)
            ).fetchone()
            status, data = (200, found[0]) if found else (404, b"no such file")
        entry.update(status=status, ms=0.0)
        state.record(entry, None)
        media = "application/gzip" if status == 200 else "text/plain"
        return Response(data, status, media_type=media)

    return [Route(DOWNLOAD_PATH.replace("{export_id}", "{export_id:int}"), download)]


def describe(state: State) -> list[dict[str, Any]]:
    """Exports for inspection: the export object and its request body."""
    at = state.clock.now()
    rows = state.store.db.execute(EXPORT_SQL + " ORDER BY id").fetchall()
    return [{**_view(r, at), "request": json.loads(r[2])} for r in rows]


ROUTES = collect(globals())
