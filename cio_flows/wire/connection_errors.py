"""Why a request failed, in words naming the host, and whether the server may have it.

Errors from requests/urllib3 nest their causes several ways (a DNS failure inside a
MaxRetryError inside a ConnectionError); this reads the whole chain once, at this boundary.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ..printable import printable

# Set (True) on errors raised while a connection was opening: no byte of the request has left.
IN_CONNECT = "cio_flows_in_connect"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NEVER_SENT_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)
# OpenSSL's reasons when the other end answers a TLS hello in plain HTTP.
_PLAIN_HTTP_SIGNS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"})


@dataclass(frozen=True)
class ConnectionFailure:
    cause: str  # names the host and what went wrong
    opened: bool  # a connection was open, so the server may have the request
    transient: bool = True  # worth another attempt


def classify_failure(exc: requests.exceptions.RequestException, url: str) -> ConnectionFailure:
    """Why a request failed, and whether its connection ever opened (then it may have arrived)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or _DEFAULT_PORTS.get(parts.scheme, '')}"
    chain = list(_exception_chain(exc))
    if isinstance(exc, _NEVER_SENT_URL_ERRORS):
        where = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "no host"
        return ConnectionFailure(
            f"invalid URL ({where}; expected http(s)://HOST)", False, transient=False
        )
    dns = _first(chain, socket.gaierror)
    if dns is not None:
        # "not known" is an answer, not an outage: asking again cannot change it.
        permanent = dns.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        return ConnectionFailure(
            f"DNS lookup failed for {host} ({dns.strerror})", False, not permanent
        )
    if _first(chain, ConnectionRefusedError) is not None:
        return ConnectionFailure(f"connection refused by {host}", opened=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectionFailure(f"timed out connecting to {host}", opened=False)
    if any(getattr(e, IN_CONNECT, False) for e in chain):
        return ConnectionFailure(_connect_cause(exc, chain, host), opened=False)
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectionFailure(f"could not connect to {host} through the proxy", opened=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return ConnectionFailure(f"timed out reading the answer from {host}", opened=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectionFailure(f"TLS error with {host} after the request was sent", opened=True)
    if isinstance(
        exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    ):
        return ConnectionFailure(f"connection to {host} closed mid-answer", opened=True)
    return ConnectionFailure(f"{type(exc).__name__} talking to {host}", opened=True)


def _connect_cause(exc: Exception, chain: list[BaseException], host: str) -> str:
    """The cause of a failure while opening a connection (TCP connect and TLS handshake)."""
    tls = _first(chain, ssl.SSLError)
    if tls is None and isinstance(exc, requests.exceptions.Timeout):
        return f"TLS handshake with {host} timed out (is it a plain-http port?)"
    if tls is None:
        reason = next((e.strerror for e in chain if isinstance(e, OSError) and e.strerror), exc)
        return f"could not connect to {host} ({reason})"
    detail = (
        getattr(tls, "verify_message", None) or str(tls.reason or tls).replace("_", " ").lower()
    )
    hint = " (is it a plain-http port?)" if tls.reason in _PLAIN_HTTP_SIGNS else ""
    return f"TLS handshake with {host} failed: {detail}{hint}"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and every exception it wraps: requests and urllib3 nest the cause several ways."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args[:1])
        pending.extend(e for e in linked if isinstance(e, BaseException))


def _first(chain: list[BaseException], kind: type) -> Any:
    return next((e for e in chain if isinstance(e, kind)), None)


def error_detail(raw: requests.Response) -> str:
    """Customer.io's error text, from any of its envelopes, on one line with control characters
    escaped (it is the server's text); never the request payload. Any other shape says nothing."""
    try:
        body = raw.json()
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's stack
        return ""
    messages: list[str] = []
    if isinstance(body, dict):
        meta = body.get("meta")
        if isinstance(meta, dict):
            if isinstance(meta.get("error"), str):
                messages.append(meta["error"])
            messages.extend(str(m) for m in _listed(meta.get("errors")))
        for error in _listed(body.get("errors")):
            if isinstance(error, dict):
                messages.append(str(error.get("detail") or error.get("message") or error))
    text = printable("; ".join(messages)[:300])
    return f": {text}" if text else ""


def _listed(value: Any) -> list[Any]:
    """A list the server sent, or nothing: `errors: 5` or `"bad"` is no list of errors."""
    return value if isinstance(value, list) else []
