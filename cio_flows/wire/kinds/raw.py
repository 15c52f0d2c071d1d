"""`request`: any call of any of the three APIs, for what no step kind covers yet.

It goes out with the family's auth, host (region or URL override), rate limit and retry rules.
A GET is safe to repeat; any other method is not (UNKNOWN when its answer is lost, never resent
on resume) unless the flow says `idempotent: true`. The answer is kept whole.
"""

from __future__ import annotations

import re
from typing import Any

from ...printable import printable
from ..families import BROADCAST_BUCKET
from ..types import Request, SingleRequest, StepKeys
from .answers import query_value
from .registry import ANY, StepKind, register

_BROADCAST_TRIGGER = re.compile(r"/v1/campaigns/[^/]+/triggers/?")


def rate_bucket(api: str, method: str, path: str) -> str:
    """The bucket the same call gets from its own kind: App sends and broadcast triggers have
    limits of their own."""
    if api == "app" and method == "POST":
        if path.startswith("/v1/send/"):
            return "app_send"
        if _BROADCAST_TRIGGER.fullmatch(path):
            return BROADCAST_BUCKET
    return ""


def _params(query: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """Query pairs in the order written; a list repeats its name."""
    pairs: list[tuple[str, str]] = []
    for name, value in (query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((name, query_value(item)))
    return tuple(pairs)


# What a path must not hold (request.json says so too; this also covers `validate: false`):
# `//host` or a dot segment would retarget the call, controls would split the request line.
_BAD_PATH = re.compile(r"^(?!/)|^//|/\.{1,2}(/|$)|[?#\s\x00-\x1f\x7f]")


def checked_path(path: Any) -> str:
    """The path as sent; `@` encoded (`a@b` is a user in some URL parsers). ValueError if unsafe."""
    if not isinstance(path, str) or _BAD_PATH.search(path):
        raise ValueError(
            f"request path {printable(repr(path)[:80])} must start with one /, and hold no"
            " . or .. segment, space, control character, ? or #"
        )
    return path.replace("@", "%40")


class RawRequest(SingleRequest):
    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        method = payload["method"].upper()
        repeatable = method == "GET" or bool(payload.get("idempotent", False))
        return Request(
            payload["api"],
            method,
            checked_path(payload["path"]),
            payload.get("body"),
            params=_params(payload.get("query")),
            bucket=rate_bucket(payload["api"], method, payload["path"]),
            repeatable=repeatable,
        )


# The kind is repeatable: each request says whether it is (see first_request).
register(
    StepKind(
        "request",
        "Any API call: api (track, pipelines, app), method, path, optional query, body,"
        " idempotent. Non-GET calls are not resent unless idempotent.",
        RawRequest(),
        family=ANY,
    )
)
