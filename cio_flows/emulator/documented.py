"""Routes for the documented operations no module of the emulator models: each answers the
fixed, schema-valid body of openapi/fixed.py, with the operation's documented auth (Track basic,
App bearer, or none), rate-limit family and faults like every other route."""

from __future__ import annotations

import re
from typing import Any

from .core import APP, TRACK, Handler, Req, RouteSpec
from .openapi import Operation, operations
from .openapi.fixed import answer
from .state import State

_PARAM = re.compile(r"\{[^}]+\}")


def shape(path: str) -> str:
    """A path with its parameter names erased: `/v1/a/{x}` and `/v1/a/{y}` are one route."""
    return _PARAM.sub("{}", path)


def _handler(op: Operation) -> Handler:
    def fixed(state: State, req: Req) -> tuple[int, Any]:
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
