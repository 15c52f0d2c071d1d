"""The HTTP exchange of a run, for `-v` (readable, on stderr) and `--trace FILE` (JSON Lines).

Both are transport hooks (TransportSettings.on_exchange), called after every attempt. The
transport never hands them the Authorization header; every text is redacted before it is cut
or written, so no form of a key (raw, base64, JSON- or URL-escaped) leaves, even when a server
echoes the request's headers back in its answer.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..printable import printable
from ..redact import Redactor
from ..wire.exchange import Exchange, ExchangeHook

BODY_LIMIT = 500  # characters of a body shown on the terminal


def cut(text: str, limit: int = BODY_LIMIT) -> str:
    """At most `limit` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class VerboseExchanges:
    """Hook: each request and answer as a few readable lines, bodies cut to `limit`."""

    def __init__(
        self,
        redactor: Redactor,
        write: Callable[[str], None] | None = None,
        *,
        limit: int = BODY_LIMIT,
    ) -> None:
        self._redact = redactor
        self._write = write or _to_stderr
        self._limit = limit
        self._lock = threading.Lock()  # an exchange's lines stay together under --jobs

    def __call__(self, exchange: Exchange) -> None:
        who = f"[{exchange.label}] " if exchange.label else ""
        retry = f" (attempt {exchange.attempt})" if exchange.attempt > 1 else ""
        lines = [f"{who}> {exchange.method} {exchange.url}{retry}"]
        if exchange.request_body is not None:
            lines.append("    " + self._body(exchange.request_body))
        took = f"{exchange.elapsed * 1000:.0f} ms"
        if exchange.status is None:
            lines.append(f"{who}< no answer after {took}: {exchange.error}")
        else:
            lines.append(f"{who}< {exchange.status} in {took}")
            if exchange.response_body:
                lines.append("    " + self._body(exchange.response_body))
        text = printable(self._redact("\n".join(lines)), lines=True)  # the server's own bytes
        with self._lock:
            self._write(text)

    def _body(self, body: str) -> str:
        one_line = " ".join(body.split())
        return cut(self._redact(one_line), self._limit)  # redacted first: no half key survives


class TraceFile:
    """Hook: one JSON object per exchange, bodies whole, written to `path` as they happen."""

    def __init__(self, path: str | Path, redactor: Redactor) -> None:
        self.path = Path(path)
        self._redact = redactor
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8")
        self.error: OSError | None = None  # the first write that failed; later ones are skipped

    def __call__(self, exchange: Exchange) -> None:
        line = self._redact(json.dumps(trace_record(exchange), ensure_ascii=False))
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                self.error = exc
                self._close()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def __enter__(self) -> TraceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def trace_record(exchange: Exchange) -> dict[str, Any]:
    """The JSON a trace line holds; a JSON body stays JSON, any other stays text."""
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "flow": exchange.label,
        "family": exchange.family,
        "attempt": exchange.attempt,
        "elapsed_ms": round(exchange.elapsed * 1000, 3),
        "request": {
            "method": exchange.method,
            "url": exchange.url,
            "headers": exchange.request_headers,
            "body": _json_or_text(exchange.request_body),
        },
    }
    if exchange.status is None:
        record["error"] = exchange.error
    else:
        record["response"] = {
            "status": exchange.status,
            "headers": exchange.response_headers,
            "body": _json_or_text(exchange.response_body),
        }
    return record


def _json_or_text(body: str | None) -> Any:
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def all_of(hooks: Iterable[ExchangeHook | None]) -> ExchangeHook | None:
    """One hook calling each given one in turn (None when there is none)."""
    found = [hook for hook in hooks if hook is not None]
    if not found:
        return None
    if len(found) == 1:
        return found[0]

    def each(exchange: Exchange) -> None:
        for hook in found:
            hook(exchange)

    return each


def labelled(hook: ExchangeHook, label: str) -> ExchangeHook:
    """The hook, with every exchange naming who sent it (a flow of a suite)."""
    return lambda exchange: hook(replace(exchange, label=label))


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
