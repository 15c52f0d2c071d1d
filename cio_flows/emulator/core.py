"""Shared pieces of the handlers: the request view, the API error, routes, small validators."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import State

# API families (auth, rate-limit bucket, faults) ...
TRACK, PIPELINES, APP = "track", "pipelines", "app"
# ... and error styles: how an endpoint spells an error body.
META_ERRORS = "meta_errors"  # {"meta": {"errors": ["..."]}}: Track v1, Pipelines strict
META_ERROR = "meta_error"  # {"meta": {"error": "..."}}: App sends, Track merge_customers
ERRORS_DETAIL = "errors_detail"  # {"errors": [{"detail", "status"}]}: App
ERRORS_FIELD = "errors_field"  # {"errors": [{"reason", "field", "message"}]}: Track v2
DEFAULT_STYLE = {TRACK: META_ERRORS, PIPELINES: META_ERRORS, APP: ERRORS_DETAIL}


class ApiError(Exception):
    """An answer other than success that Customer.io gives for bad input."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, reason: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.reason = reason


# Deeper bodies are refused: everything downstream (the store, the request log, the inspection
# API) recurses through them, and Python runs out of stack near 1,000 levels.
MAX_JSON_DEPTH = 128


class JsonTooDeep(ValueError):
    """A JSON body nested deeper than MAX_JSON_DEPTH."""


def load_json(raw: bytes) -> Any:
    """json.loads that refuses bodies nested deeper than MAX_JSON_DEPTH (JsonTooDeep)."""
    try:
        value = json.loads(raw)
    except RecursionError:  # nested deeper than the decoder's stack allows
        raise JsonTooDeep(MAX_JSON_DEPTH) from None
    # Cheap bound first: a body with few containers cannot be deep, and most requests are small.
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep(MAX_JSON_DEPTH)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Level by level, without recursion (the point is not to need the stack)."""
    level = [value]
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below += [c for c in children if type(c) is dict or type(c) is list]
        if not below:
            return False
        level = below
    return True


@dataclass
class Req:
    """What a handler sees of a request: already authenticated and parsed."""

    method: str
    path: str
    params: dict[str, str]
    query: Any  # starlette QueryParams (multi-dict, read like a dict)
    body: Any
    size: int
    strict: bool = False
    root: str = ""  # scheme://host:port the request came to


Handler = Callable[["State", Req], tuple[int, Any]]


@dataclass(frozen=True)
class RouteSpec:
    """One endpoint: the family decides auth, bucket and faults; the style the error body."""

    method: str
    path: str
    handler: Handler
    family: str
    style: str
    mutating: bool = True
    bucket: str | None = None  # a rate-limit bucket of its own, taken after the family's
    auth: bool = True  # False: documented with `security: []` (e.g. Track /unsubscribe)


def route(
    method: str,
    path: str,
    family: str,
    *,
    style: str | None = None,
    mutating: bool = True,
    bucket: str | None = None,
    auth: bool = True,
) -> Callable:
    """Decorator that tags a handler with its route; `collect` gathers them per module."""

    def register(fn: Handler) -> Handler:
        spec = RouteSpec(
            method, path, fn, family, style or DEFAULT_STYLE[family], mutating, bucket, auth
        )
        fn.__dict__.setdefault("_routes", []).append(spec)
        return fn

    return register


def collect(namespace: dict[str, Any]) -> list[RouteSpec]:
    """Routes registered by @route in a module, in definition order."""
    out: list[RouteSpec] = []
    for value in namespace.values():
        out.extend(getattr(value, "_routes", ()))
    return out


def require_object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return body


def optional_object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"'{key}' must be an object", field=key)
    return value


def byte_len(value: Any) -> int:
    return len(str(value).encode("utf-8"))
