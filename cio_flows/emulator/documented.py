"""Routes for the documented operations no module of the emulator models: each answers the
fixed, schema-valid body of openapi/fixed.py, with the operation's documented auth (Track basic,
App bearer, or none), rate-limit family and faults like every other route."""

from __future__ import annotations

import re
from typing import Any

from .core import APP, TRACK, ApiError, Handler, Req, RouteSpec
from .openapi import Operation, operations
from .openapi.fixed import answer
from .programs import exists
from .state import State

_PARAM = re.compile(r"\{[^}]+\}")


def shape(path: str) -> str:
    """A path with its parameter names erased: `/v1/a/{x}` and `/v1/a/{y}` are one route."""
    return _PARAM.sub("{}", path)


# Path parameters naming something the emulator holds: a fixed answer about a campaign,
# broadcast, newsletter, transactional message or segment that does not exist is a 404.
HELD = {
    "campaign_id": "campaign",
    "broadcast_id": "campaign",
    "newsletter_id": "newsletter",
    "transactional_id": "transactional",
    "segment_id": "segment",
}


def _handler(op: Operation) -> Handler:
    checked = [(name, kind) for name, kind in HELD.items() if "{" + name + "}" in op.path]
    can_404 = 404 in op.statuses

    def fixed(state: State, req: Req) -> tuple[int, Any]:
        for name, kind in checked:
            if can_404 and not exists(state, kind, req.params[name]):
                raise ApiError(404, f"{kind} {req.params[name]} not found")
        return answer(op)

    fixed.__name__ = f"fixed_{op.method.lower()}_{shape(op.path)}"
    return fixed


def routes(served: list[RouteSpec]) -> list[RouteSpec]:
    """A fixed-answer route for every documented operation not in `served`."""
    have = {(s.method, shape(s.path)) for s in served}
    out: list[RouteSpec] = []
    for op in operations():
        if (op.method, shape(op.path)) in have:
            continue
        family = TRACK if op.document == "track" else APP
        out.append(
            RouteSpec(
                op.method,
                op.path,
                _handler(op),
                family,
                "meta_errors" if family == TRACK else "errors_detail",
                mutating=False,
                auth=op.needs_auth,
            )
        )
    return out
