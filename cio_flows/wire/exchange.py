"""What `-v` and `--trace` see of each attempt: the Exchange a transport hands its hook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .types import Request

if TYPE_CHECKING:  # only named in annotations: `validate` and `--help` never load requests
    import requests


@dataclass(frozen=True)
class Exchange:
    """One attempt of a request and its answer (`-v`, `--trace`). Never holds the Authorization
    header; the bodies can still hold personal data and echoed keys: redact before output."""

    family: str
    method: str
    url: str  # with its query string
    request_headers: dict[str, str]
    request_body: str | None  # the JSON text sent
    status: int | None  # None: no answer, `error` says why
    response_headers: dict[str, str]
    response_body: str | None
    elapsed: float  # seconds, this attempt alone
    attempt: int
    error: str | None = None
    label: str | None = None  # who sent it, e.g. the flow file in a suite


ExchangeHook = Callable[[Exchange], None]


def encode_body(body: Any) -> bytes:
    """The JSON bytes sent for a request body."""
    encoded: bytes | None = getattr(body, "encoded", None)  # a batch's body, encoded already
    if encoded is not None:
        return encoded
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def exchange_of(
    url: str,
    request: Request,
    attempt: int,
    started: float,
    raw: requests.Response | None,
    error: str | None,
) -> Exchange:
    """The Exchange of one attempt begun at `started` (time.monotonic), answered or not."""
    elapsed = time.monotonic() - started
    body = None if request.body is None else encode_body(request.body).decode("utf-8")
    if raw is None:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return Exchange(
            request.family,
            request.method,
            url + request.query,
            headers,
            body,
            None,
            {},
            None,
            elapsed,
            attempt,
            error,
        )
    sent = raw.request
    headers = {k: v for k, v in sent.headers.items() if k.lower() != "authorization"}
    return Exchange(
        request.family,
        request.method,
        sent.url or url,
        headers,
        body,
        raw.status_code,
        dict(raw.headers),
        raw.text if raw.content else None,
        elapsed,
        attempt,
    )
