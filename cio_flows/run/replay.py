"""Record a flow's HTTP exchanges to a cassette (run/cassette.py), and replay the flow from it
with no network.

Scrubbed: the Authorization header is never part of an exchange, cookies are dropped, and the
redactor masks every form of every key in URLs, headers and bodies. Kept in the cassette's
metadata: the run id, each row's now()/unix_now()/uuid() values in the order the run asked for
them, and the names (never the values) of the credential variables that were set, since they
decide which API identify and track go to. A replay feeds those back, so it renders the same
requests, and compares each request with the recorded ones (method, path, query, body).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..flow.jinja_env import Helpers
from ..wire.config import CREDENTIAL_FIELDS
from ..wire.exchange import Exchange
from ..wire.mock import mock_sessions
from .cassette import Cassette, Interaction
from .keys import new_run_id
from .prepare import RunOptions

HELPER_CALLS = ("now", "unix_now", "uuid")
PLACEHOLDER_KEY = "cio-flows-replay-placeholder"  # a replay needs no key: none is sent
_DROPPED_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "content-length", "content-encoding"}
    | {"transfer-encoding"}
)
_SHOWN = 80  # characters of a differing value in a message


# --- now(), unix_now(), uuid() -------------------------------------------------------------------


class _RecordingHelpers(Helpers):
    """The live values, each kept in the row's lists as it is handed out."""

    def __init__(self, values: dict[str, list[Any]]) -> None:
        self._values = values
        self._lock = threading.Lock()

    def _keep(self, name: str, value: Any) -> Any:
        with self._lock:
            self._values.setdefault(name, []).append(value)
        return value

    def now(self) -> str:
        return str(self._keep("now", super().now()))

    def unix_now(self) -> int:
        return int(self._keep("unix_now", super().unix_now()))

    def uuid(self) -> str:
        return str(self._keep("uuid", super().uuid()))


class _ReplayedHelpers(Helpers):
    """The recorded values in order; past their end, live ones (the requests then differ)."""

    def __init__(self, values: dict[str, list[Any]]) -> None:
        self._values = {name: iter(list(values.get(name) or ())) for name in HELPER_CALLS}
        self._lock = threading.Lock()

    def _next(self, name: str, live: Callable[[], Any]) -> Any:
        with self._lock:
            value = next(self._values[name], None)
        return live() if value is None else value

    def now(self) -> str:
        return str(self._next("now", super().now))

    def unix_now(self) -> int:
        return int(self._next("unix_now", super().unix_now))

    def uuid(self) -> str:
        return str(self._next("uuid", super().uuid))


class _HelperScopes:
    """RunOptions.template_helpers: one source per row, the same on every call for that row."""

    def __init__(self, make: Callable[[str], Helpers]) -> None:
        self._make = make
        self._made: dict[str, Helpers] = {}
        self._lock = threading.Lock()

    def __call__(self, scope: str) -> Helpers:
        with self._lock:
            if scope not in self._made:
                self._made[scope] = self._make(scope)
            return self._made[scope]


def _environ(options: RunOptions) -> dict[str, str]:
    return dict(os.environ if options.environ is None else options.environ)


# --- recording --------------------------------------------------------------------------------


class CassetteRecorder:
    """Records one flow's run: options(...) for the run, then save()."""

    def __init__(self, flow: str | Path, path: Path, redact: Callable[[str], str]) -> None:
        self.path = path
        self._redact = redact
        self._lock = threading.Lock()
        self.cassette = Cassette(str(flow), new_run_id(), [], {})

    def options(self, options: RunOptions) -> RunOptions:
        """The run's options: a run id of the cassette's, kept helper values, exchanges kept."""
        environ = _environ(options)
        self.cassette.credentials = [name for name in CREDENTIAL_FIELDS if environ.get(name)]
        helpers = self.cassette.helpers
        shown = options.transport.on_exchange

        def on_exchange(exchange: Exchange) -> None:
            self.keep(exchange)
            if shown is not None:
                shown(exchange)

        return replace(
            options,
            run_id=self.cassette.run_id,
            template_helpers=_HelperScopes(
                lambda scope: _RecordingHelpers(helpers.setdefault(scope, {}))
            ),
            transport=replace(options.transport, on_exchange=on_exchange),
        )

    def keep(self, exchange: Exchange) -> None:
        if exchange.status is None:  # no answer: nothing a replay could give back
            return
        redact = self._redact
        interaction = Interaction(
            method=exchange.method.upper(),
            uri=redact(exchange.url),
            request_headers=_scrubbed(exchange.request_headers, redact),
            request_body=redact(exchange.request_body) if exchange.request_body else None,
            status=exchange.status,
            response_headers=_scrubbed(exchange.response_headers, redact),
            response_body=redact(exchange.response_body) if exchange.response_body else None,
        )
        with self._lock:
            self.cassette.interactions.append(interaction)

    def save(self) -> None:
        """Write the cassette (OSError when it cannot be)."""
        with self._lock:
            self.cassette.write(self.path)


def _scrubbed(headers: dict[str, str], redact: Callable[[str], str]) -> dict[str, str]:
    return {k: redact(str(v)) for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}


# --- replaying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What a replay compares: method, path, query and body (not the host: it differs)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any

    @classmethod
    def of(cls, method: str, url: str, body: Any) -> _Request:
        parts = urlsplit(url)
        query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
        return cls(method.upper(), parts.path or "/", query, body)

    def matches(self, other: _Request) -> bool:
        same_call = (self.method, self.path, self.query) == (other.method, other.path, other.query)
        return same_call and first_difference(self.body, other.body) is None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class CassettePlayer:
    """Answers one flow's requests from its cassette; `problem()` says how the run differed."""

    def __init__(self, cassette: Cassette, path: Path, redact: Callable[[str], str]) -> None:
        self.cassette = cassette
        self.path = path
        self._redact = redact
        self._recorded = [
            (_Request.of(i.method, i.uri, _json_or_text(i.request_body)), i)
            for i in cassette.interactions
        ]
        self._used = [False] * len(self._recorded)
        self.differences: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, redact: Callable[[str], str]) -> CassettePlayer:
        return cls(Cassette.read(path), path, redact)

    def options(self, options: RunOptions) -> RunOptions:
        """The run's options: the recorded run id and helper values, placeholder keys for the
        credentials that were set (so each step goes to the same API), no network."""
        environ = {k: v for k, v in _environ(options).items() if k not in CREDENTIAL_FIELDS}
        environ.update(dict.fromkeys(self.cassette.credentials, PLACEHOLDER_KEY))
        helpers = self.cassette.helpers
        return replace(
            options,
            run_id=self.cassette.run_id,
            environ=environ,
            template_helpers=_HelperScopes(lambda scope: _ReplayedHelpers(helpers.get(scope, {}))),
            transport=replace(options.transport, session_factory=mock_sessions(self.answer)),
        )

    def answer(
        self, method: str, url: str, _headers: Any, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        """The recorded answer to the first unused recorded request equal to this one; a
        400 naming the difference when there is none."""
        live = _Request.of(method, self._redact(url), self._scrub(body))
        with self._lock:
            for index, (recorded, interaction) in enumerate(self._recorded):
                if not self._used[index] and recorded.matches(live):
                    self._used[index] = True
                    return (
                        interaction.status,
                        interaction.response_headers,
                        interaction.response_body or "",
                    )
            difference = self._difference(live)
            self.differences.append(difference)
        return 400, {"Content-Type": "application/json"}, {"meta": {"error": difference}}

    def _scrub(self, body: Any) -> Any:
        """The live body as the cassette keeps bodies: redacted."""
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        if body is None or isinstance(body, str):
            return _json_or_text(self._redact(body)) if body else None
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return _json_or_text(self._redact(text))

    def _difference(self, live: _Request) -> str:
        unused = [r for i, (r, _) in enumerate(self._recorded) if not self._used[i]]
        same = [r for r in unused if (r.method, r.path) == (live.method, live.path)]
        if same:
            recorded = same[0]
            if recorded.query != live.query:
                return (
                    f"{live} differs from the cassette in its query: recorded"
                    f" ?{_query(recorded.query)}, now ?{_query(live.query)}"
                )
            where, was, now = first_difference(recorded.body, live.body) or ("$", "?", "?")
            return (
                f"{live} differs from the cassette at {where} in the body:"
                f" recorded {_show(was)}, now {_show(now)}"
            )
        if unused:
            return f"{live} is not in the cassette: the next recorded request is {unused[0]}"
        return f"{live} is not in the cassette: all {len(self._recorded)} recorded were sent"

    def problem(self) -> str | None:
        """The first difference from the cassette, or the requests the run did not send."""
        with self._lock:
            if self.differences:
                return f"replay of {self.path}: {self.differences[0]}"
            left = [r for i, (r, _) in enumerate(self._recorded) if not self._used[i]]
        if left:
            return (
                f"replay of {self.path}: {len(left)} recorded request(s) were not sent,"
                f" the first {left[0]}"
            )
        return None


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


_ABSENT = object()


def first_difference(recorded: Any, now: Any, path: str = "$") -> tuple[str, Any, Any] | None:
    """(JSON path, recorded value, value now) where two JSON values first differ; None if equal.
    A member one side lacks reads as absent."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in [*recorded, *(k for k in now if k not in recorded)]:
            found = first_difference(
                recorded.get(key, _ABSENT), now.get(key, _ABSENT), _member(path, key)
            )
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(now, list):
        for index in range(max(len(recorded), len(now))):
            found = first_difference(
                recorded[index] if index < len(recorded) else _ABSENT,
                now[index] if index < len(now) else _ABSENT,
                f"{path}[{index}]",
            )
            if found:
                return found
        return None
    same = type(recorded) is type(now) and recorded == now
    return None if same else (path, recorded, now)


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if str(key).isidentifier() else f"{path}[{json.dumps(key)}]"


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _query(query: tuple[tuple[str, str], ...]) -> str:
    return "&".join(f"{k}={v}" for k, v in query)
