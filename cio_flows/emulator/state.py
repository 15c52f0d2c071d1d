"""Everything one emulator instance holds: store, workspace, credentials, behaviour, request log."""

from __future__ import annotations

import base64
import re
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from . import campaigns
from . import workspace as ws
from .clock import Clock, parse_clock
from .config import (
    Credentials,
    DeliveryTiming,
    Faults,
    RateLimit,
    parse_delivery,
    parse_faults,
    parse_limits,
)
from .core import load_json
from .faults import FaultInjector, TokenBucket
from .filters import SegmentResolver
from .store import Store

REQUEST_LOG_SIZE = 50_000  # entries kept, oldest dropped first ...
REQUEST_LOG_BYTES = 64 * 1024 * 1024  # ... and at most this much request body in total
_KEY_FIELDS = frozenset({"writeKey", "write_key", "api_key", "apiKey"})
_KEY_PARAM = re.compile(
    r"((?:^|&)(?:api_?key|apikey|write_?key|writekey|token|access_token|key)=)[^&]*", re.I
)


def secret_forms(credentials: Credentials) -> tuple[str, ...]:
    """Every form a key may take in a request: as is, base64 of `key`, `key:` and
    `site_id:track_key` (basic auth), with and without padding, URL-safe, and percent-encoded.
    Longest first, so a longer form is replaced before a shorter one inside it."""
    plain = list(credentials.secrets())
    if credentials.track_key:
        plain.append(f"{credentials.site_id}:{credentials.track_key}")
    plain += [f"{key}:" for key in credentials.secrets()]
    forms: set[str] = set()
    for value in plain:
        forms.add(value)
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(value.encode()).decode()
            forms.update({encoded, encoded.rstrip("=")})
    forms |= {quote(f, safe="") for f in forms}
    return tuple(sorted((f for f in forms if len(f) >= 6), key=len, reverse=True))


def _scrub_key_params(query: str) -> str:
    """Values of key-named query parameters (`api_key=...`), whatever they hold."""
    return _KEY_PARAM.sub(r"\1[REDACTED]", query)


class State:
    def __init__(
        self,
        credentials: Credentials,
        db_path: str | None,
        workspace: str | Any | None,
        limits: Any = None,
        faults: Any = None,
        delivery: Any = None,
    ) -> None:
        self.credentials = credentials
        self.secrets = secret_forms(credentials)
        self.workspace = ws.load(workspace)
        # The emulator's clock (clock.py): everything stored is stamped with it.
        self.clock = Clock(parse_clock(self.workspace.get("clock")))
        self.store = Store(db_path, self.clock)
        campaigns.install(self.store)
        self.segments = SegmentResolver(self.store.db)
        # Constructor arguments override the workspace file, family by family.
        self.base_limits = {**parse_limits(self.workspace.get("limits")), **parse_limits(limits)}
        self.base_faults = {**parse_faults(self.workspace.get("faults")), **parse_faults(faults)}
        self.base_timing = (
            parse_delivery(delivery)
            or parse_delivery(self.workspace.get("delivery"))
            or DeliveryTiming()
        )
        self.timing = self.base_timing
        self.log: deque[dict[str, Any]] = deque()
        self.log_bytes = 0
        self.seq = 0
        # Live views (the web page's Server-Sent Events): `version` grows with every change they
        # show, each watcher is called after it (on the server's thread), and `stopping` tells
        # open streams to end so the server can stop.
        self.version = 0
        self.watchers: list[Callable[[], None]] = []
        self.reset_hooks: list[Callable[[], None]] = []  # run after each reset (webhooks.py)
        self.stopping = False
        self._snapshot: sqlite3.Connection | None = None
        self.set_behaviour(self.base_limits, self.base_faults)
        fresh = self.store.db.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 0
        no_segments = self.store.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 0
        if fresh and no_segments:  # a file database keeps its state across restarts
            self.load_workspace()
        self.refresh_templates()

    # -- behaviour ---------------------------------------------------------------------------

    def set_behaviour(
        self,
        limits: dict[str, RateLimit] | None,
        faults: dict[str, Faults] | None,
        timing: DeliveryTiming | None = None,
    ) -> None:
        if timing is not None:
            self.timing = timing
        if limits is not None:
            self.buckets = {f: TokenBucket(lim) for f, lim in limits.items()}
        if faults is not None:
            self.injectors = {f: FaultInjector(x) for f, x in faults.items() if x.active}

    # -- state -------------------------------------------------------------------------------

    def load_workspace(self) -> None:
        with self.store.tx():
            ws.apply(self.store, self.workspace)
        self._take_snapshot()

    def _take_snapshot(self) -> None:
        # A page-level copy of the freshly loaded workspace: restoring it takes well under a
        # millisecond, where reloading 300 people takes tens (tests reset before each test).
        self._snapshot = sqlite3.connect(":memory:", check_same_thread=False)
        self.store.db.backup(self._snapshot)

    def reset(self, *, empty: bool = False) -> None:
        """Back to the workspace's initial state (or nothing at all), request log cleared."""
        if not empty and self._snapshot is not None:
            self._snapshot.backup(self.store.db)
        else:
            with self.store.tx():
                self.store.wipe()
                campaigns.wipe(self.store)
                if not empty:
                    ws.apply(self.store, self.workspace)
            if not empty:
                self._take_snapshot()
        self.clock.reset()
        self.refresh_templates()
        self.log.clear()
        self.log_bytes = 0
        self.seq = 0
        self.set_behaviour(self.base_limits, self.base_faults, self.base_timing)
        for hook in self.reset_hooks:
            hook()
        self.changed()

    def changed(self) -> None:
        """Tell the live views something changed (a request, a reset, a recorded metric)."""
        self.version += 1
        for watch in self.watchers:
            watch()

    def refresh_templates(self) -> None:
        """Templates by `id:<n>` and by `trigger:<name>` (trigger names are case-insensitive)."""
        rows = self.store.db.execute(
            "SELECT id, trigger, name, channel, subject, body, sender FROM templates"
        ).fetchall()
        self.templates: dict[str, dict[str, Any]] = {}
        for tid, trigger, name, channel, subject, body, sender in rows:
            tpl = {"id": tid, "trigger": trigger, "name": name, "channel": channel}
            self.add_template({**tpl, "subject": subject, "body": body, "from": sender})

    def add_template(self, tpl: dict[str, Any]) -> None:
        self.templates[f"id:{tpl['id']}"] = tpl
        if tpl["trigger"]:
            self.templates.setdefault(f"trigger:{tpl['trigger'].lower()}", tpl)

    # -- request log -------------------------------------------------------------------------

    def record(self, entry: dict[str, Any], raw: bytes | None, parsed: Any = None) -> None:
        """Append to the request log; path, query, note and body are scrubbed of every key the
        emulator knows, in every form a client may send it (issue 18, item 8)."""
        for name in ("path", "query", "note"):
            if isinstance(entry.get(name), str):
                entry[name] = self._scrub_text(entry[name])
        if entry.get("query"):
            entry["query"] = _scrub_key_params(entry["query"])
        self.seq += 1
        entry["seq"] = self.seq
        entry["body"] = self._scrub(raw, parsed) if raw else None
        entry["_bytes"] = size = len(raw) if raw else 0
        self.log.append(entry)
        self.log_bytes += size
        while len(self.log) > REQUEST_LOG_SIZE or self.log_bytes > REQUEST_LOG_BYTES:
            self.log_bytes -= self.log.popleft()["_bytes"]
        self.changed()

    def _scrub_text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[REDACTED]")
        return text

    def _scrub(self, raw: bytes, parsed: Any) -> Any:
        if any(s.encode() in raw for s in self.secrets):
            parsed = None
            text = raw.decode("utf-8", "replace")
            for secret in self.secrets:
                text = text.replace(secret, "[REDACTED]")
            raw = text.encode()
        if parsed is None:
            try:
                parsed = load_json(raw)
            except ValueError:  # malformed or nested too deeply: kept as text
                return raw[:65536].decode("utf-8", "replace")
        if isinstance(parsed, dict) and not _KEY_FIELDS.isdisjoint(parsed):
            parsed = {k: "[REDACTED]" if k in _KEY_FIELDS else v for k, v in parsed.items()}
        return parsed
