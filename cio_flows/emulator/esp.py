"""The email service provider's suppression lists: GET/POST/DELETE /v1/esp/suppression/...,
GET /v1/esp/search_suppression/{email}. An email to an address on a list is recorded as
`dropped` with the list in its failure message (sends.py), as Customer.io drops it."""

from __future__ import annotations

from typing import Any

from .core import APP, ApiError, Req, collect, route
from .state import State

# The path's suppression types and the `category` the answers name them by.
CATEGORY = {"bounces": "bounces", "spam_reports": "spam"}
MAX_LIMIT = 1000


def _type(req: Req) -> str:
    kind = req.params["suppression_type"]
    if kind not in CATEGORY:
        raise ApiError(400, f"suppression_type must be one of {', '.join(CATEGORY)}")
    return kind


def _rows(state: State, where: str, args: list[Any]) -> list[dict[str, Any]]:
    rows = state.store.db.execute(
        f"SELECT email, type, reason, created FROM esp_suppressions WHERE {where}"
        " ORDER BY created, email",
        args,
    ).fetchall()
    return [{"created": c, "email": e, "reason": r, "status": "550"} for e, _t, r, c in rows]


def suppressed(state: State, email: str) -> str | None:
    """The list (bounces, spam_reports) `email` is on, or None."""
    row = state.store.db.execute(
        "SELECT type FROM esp_suppressions WHERE email=? COLLATE NOCASE ORDER BY type LIMIT 1",
        (email.strip(),),
    ).fetchone()
    return row[0] if row else None


@route("GET", "/v1/esp/suppression/{suppression_type}", APP, mutating=False)
def list_suppressions(state: State, req: Req) -> tuple[int, Any]:
    kind = _type(req)
    limit, offset = req.query.get("limit") or "100", req.query.get("offset") or "0"
    if not limit.isdigit() or not offset.isdigit():
        raise ApiError(400, "'limit' and 'offset' must be non-negative integers")
    rows = _rows(state, "type=?", [kind])
    page = rows[int(offset) : int(offset) + min(int(limit) or 100, MAX_LIMIT)]
    return 200, {"category": CATEGORY[kind], "suppressions": page}


@route("GET", "/v1/esp/search_suppression/{email_address}", APP, mutating=False)
def search_suppression(state: State, req: Req) -> tuple[int, Any]:
    email = req.params["email_address"]
    kind = suppressed(state, email) or "bounces"
    rows = _rows(state, "email=? COLLATE NOCASE AND type=?", [email, kind])
    return 200, {"category": CATEGORY[kind], "suppressions": rows}


@route("POST", "/v1/esp/suppression/{suppression_type}/{email_address}", APP)
def suppress(state: State, req: Req) -> tuple[int, Any]:
    kind = _type(req)
    state.store.db.execute(
        "INSERT OR REPLACE INTO esp_suppressions(email, type, reason, created) VALUES(?,?,?,?)",
        (
            req.params["email_address"],
            kind,
            "Uploaded manually via api.customer.io",
            int(state.clock.now()),
        ),
    )
    return 200, {}


@route("DELETE", "/v1/esp/suppression/{suppression_type}/{email_address}", APP)
def unsuppress(state: State, req: Req) -> tuple[int, Any]:
    kind = _type(req)
    state.store.db.execute(
        "DELETE FROM esp_suppressions WHERE email=? COLLATE NOCASE AND type=?",
        (req.params["email_address"], kind),
    )
    return 204, None


ROUTES = collect(globals())
