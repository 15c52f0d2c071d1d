"""Settling sends whose outcome is unknown by reading Customer.io (on resume).

A send that was in flight when a run died (its mark committed, its answer never recorded) may or
may not have reached Customer.io. Sends carry no idempotency key, so the only way to know is to
look: the person's messages since the mark (`GET /v1/customers/{id}/messages`, `start_ts`),
matched on channel, recipient and template. A broadcast trigger is looked up in the broadcast's
trigger list. Customer.io may take a while to list a message, so a send not found is read
again until the grace period is over:

- found: the send happened; its answer is rebuilt (delivery id) and it is not sent again;
- absent after the grace period: it never arrived; it is sent again;
- unreadable (no App key, an API error, a send it cannot look up): its outcome stays unknown,
  and only `--resend-unknown` sends it again.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from ..errors import TransportError
from ..wire.types import Request, Response, path_id
from .journal_reads import InFlightSend

FOUND, ABSENT, UNREADABLE = "found", "absent", "unreadable"
# How long Customer.io may take to list a message it accepted; on a local emulator, seconds.
DEFAULT_GRACE = 60.0
LOCAL_GRACE = 3.0
# How far Customer.io's clock may be behind this machine's: messages listed that much before the
# mark still match (an emulator shares the clock: 0).
REMOTE_SKEW = 30.0
PAGES = 5  # pages of messages read per person and round: sends since the mark are few
# The App API's message `type` per send channel (SMS goes out through Twilio).
MESSAGE_TYPE = {
    "email": "email",
    "push": "push",
    "sms": "twilio",
    "whatsapp": "whatsapp",
    "in_app": "in_app",
    "inbox_message": "inbox",
}
_SEND_PATH = re.compile(r"/v1/send/(?P<channel>[a-z_]+)")
_TRIGGER_PATH = re.compile(r"/v1/campaigns/(?P<broadcast>[^/]+)/triggers")
_ADDRESS = re.compile(r"<([^<>]+)>\s*$")

Read = Callable[[Request], Response]


@dataclass(frozen=True)
class Settlement:
    """What reading Customer.io said about one unknown send."""

    row_key: str
    step_key: str
    how: str  # FOUND | ABSENT | UNREADABLE
    reason: str  # in words, for the console and the reports
    response: dict[str, Any] | None = None  # FOUND: the send's answer, rebuilt

    def describe(self) -> str:
        return f"row {self.row_key}, {self.step_key}: {self.reason}"


def send_facts(request: Request) -> dict[str, Any] | None:
    """What settling needs to find a send later: its channel, recipient, template (a
    transactional send) or its broadcast (a trigger). Kept in the journal's in-flight mark."""
    body = request.body if isinstance(request.body, Mapping) else {}
    if request.method == "POST" and (match := _SEND_PATH.fullmatch(request.path)):
        identifiers = body.get("identifiers")
        return {
            "kind": "send",
            "channel": match["channel"],
            "identifiers": dict(identifiers) if isinstance(identifiers, Mapping) else None,
            "to": body.get("to") if isinstance(body.get("to"), str) else None,
            "template": body.get("transactional_message_id"),
        }
    if request.method == "POST" and (match := _TRIGGER_PATH.fullmatch(request.path)):
        return {"kind": "broadcast", "broadcast_id": match["broadcast"]}
    return {"kind": "request", "method": request.method, "path": request.path}


def is_local(root: str) -> bool:
    """Whether a root URL is a loopback address (an emulator, a test server)."""
    host = urlsplit(root).hostname or ""
    try:
        return host == "localhost" or ip_address(host).is_loopback
    except ValueError:
        return False


def default_grace(app_root: str) -> float:
    """Seconds to wait for a message to be listed: short on a loopback address (an emulator)."""
    return LOCAL_GRACE if is_local(app_root) else DEFAULT_GRACE


def unreadable(sends: Iterable[InFlightSend], reason: str) -> list[Settlement]:
    """Every send left unknown, for one reason (no App key, a loop step...)."""
    return [Settlement(s.row_key, s.step_key, UNREADABLE, reason) for s in sends]


@dataclass
class _Pending:
    send: InFlightSend
    lookup: Callable[[], dict[str, Any] | None]  # the send's answer if found; raises if unreadable


@dataclass
class Settler:
    """Settles unknown sends with `read` (the transport's send: raises TransportError)."""

    read: Read
    grace: float = DEFAULT_GRACE
    interval: float | None = None  # between rounds of reads; default a tenth of the grace
    # Seconds Customer.io's clock may be behind ours: messages created that much before the
    # mark still count (0 on an emulator, which shares this machine's clock).
    skew: float = 0.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _claimed: set[str] = field(default_factory=set)  # messages/triggers already matched

    def settle(self, sends: Iterable[InFlightSend]) -> list[Settlement]:
        """One settlement per send: reads every round until each is found or the grace is over
        (the last round reads at or after the deadline)."""
        done: list[Settlement] = []
        pending: list[_Pending] = []
        for send in sends:
            lookup = self._lookup(send)
            if isinstance(lookup, str):
                done.append(Settlement(send.row_key, send.step_key, UNREADABLE, lookup))
            else:
                pending.append(_Pending(send, lookup))
        deadline = self.clock() + self.grace
        interval = self.interval if self.interval is not None else max(0.2, self.grace / 10)
        while pending:
            pending = self._round(pending, done)
            if not pending or self.clock() >= deadline:
                break
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
        waited = f"{self.grace:g} s"
        done += [
            Settlement(
                p.send.row_key,
                p.send.step_key,
                ABSENT,
                f"not in Customer.io after {waited}: sent again",
            )
            for p in pending
        ]
        return done

    def _round(self, pending: list[_Pending], done: list[Settlement]) -> list[_Pending]:
        left = []
        for item in pending:
            send = item.send
            try:
                answer = item.lookup()
            except (TransportError, _Unreadable) as exc:
                reason = f"Customer.io could not be read ({exc}): outcome still unknown"
                done.append(Settlement(send.row_key, send.step_key, UNREADABLE, reason))
                continue
            if answer is None:
                left.append(item)
                continue
            what = answer.get("delivery_id") or answer.get("id")
            reason = f"found in Customer.io ({what}): not sent again"
            done.append(Settlement(send.row_key, send.step_key, FOUND, reason, answer))
        return left

    def _lookup(self, send: InFlightSend) -> Callable[[], dict[str, Any] | None] | str:
        """How to look the send up, or why it cannot be."""
        facts = send.facts or {}
        since = max(0, math.floor(send.since - self.skew))  # start_ts is whole seconds
        if facts.get("kind") == "send":
            person = _person(facts)
            if person is None:
                return "the send names no person to look up: outcome still unknown"
            return lambda: self._find_message(facts, person, since)
        if facts.get("kind") == "broadcast":
            return lambda: self._find_trigger(str(facts["broadcast_id"]), since)
        if facts.get("kind") == "request":
            return "a raw request cannot be looked up in Customer.io: outcome still unknown"
        return "the journal kept nothing to look the send up by: outcome still unknown"

    def _find_message(
        self, facts: dict[str, Any], person: tuple[str, str], since: int
    ) -> dict[str, Any] | None:
        id_type, value = person
        start = ""
        for _ in range(PAGES):
            params = [("id_type", id_type), ("start_ts", str(since)), ("limit", "1000")]
            if start:
                params.append(("start", start))
            path = f"/v1/customers/{path_id(value)}/messages"
            try:
                body = self.read(Request("app", "GET", path, params=tuple(params))).body
            except TransportError as exc:
                if exc.status == 404:  # no such person: a send would have created them
                    return None
                raise
            messages = body.get("messages") if isinstance(body, Mapping) else None
            if not isinstance(messages, list):
                raise _Unreadable("its answer lists no messages")
            # Oldest first: the message nearest after the mark is the send's.
            for message in sorted(messages, key=lambda m: _number(m.get("created"))):
                if _matches(message, facts, since) and message["id"] not in self._claimed:
                    self._claimed.add(message["id"])
                    return {"delivery_id": message["id"], "queued_at": message.get("created")}
            start = body.get("next") or ""
            if not start:
                return None
        return None

    def _find_trigger(self, broadcast: str, since: int) -> dict[str, Any] | None:
        path = f"/v1/broadcasts/{path_id(broadcast)}/triggers"
        body = self.read(Request("app", "GET", path)).body
        triggers = body.get("triggers") if isinstance(body, Mapping) else None
        if not isinstance(triggers, list):
            raise _Unreadable("its answer lists no triggers")
        for trigger in sorted(triggers, key=lambda t: _number(t.get("created_at"))):
            key = f"trigger:{broadcast}:{trigger.get('id')}"
            if _number(trigger.get("created_at")) >= since and key not in self._claimed:
                self._claimed.add(key)
                return {"id": trigger.get("id")}
        return None


class _Unreadable(Exception):
    """An answer that says nothing either way (not the shape the API documents)."""


def _person(facts: Mapping[str, Any]) -> tuple[str, str] | None:
    """(id_type, value) of the send's person: its identifiers, else a single `to` address."""
    identifiers = facts.get("identifiers") or {}
    for id_type in ("id", "email", "cio_id"):
        value = identifiers.get(id_type)
        if value not in (None, ""):
            return id_type, str(value)
    to = facts.get("to")
    if facts.get("channel") == "email" and isinstance(to, str) and "," not in to:
        return "email", _address(to)
    return None


def _matches(message: Mapping[str, Any], facts: Mapping[str, Any], since: int) -> bool:
    """The same channel, recipient and template, created at or after the mark."""
    wanted_type = MESSAGE_TYPE.get(str(facts.get("channel")))
    if message.get("type") not in (None, wanted_type):
        return False
    if message.get("id") in (None, "") or _number(message.get("created")) < since:
        return False
    to = facts.get("to")
    addressed = bool(to) and facts.get("channel") in ("email", "sms", "whatsapp")
    if addressed and _address(str(message.get("recipient") or "")) != _address(str(to)):
        return False
    return _same_template(message, facts.get("template"))


def _same_template(message: Mapping[str, Any], template: Any) -> bool:
    """Compared where the answer carries it: the id or trigger name the send gave, else the
    numeric template id."""
    if template is None:
        return True
    named = message.get("transactional_message_id")
    if named is not None:
        return str(named).strip().lower() == str(template).strip().lower()
    numeric = message.get("msg_template_id", message.get("message_template_id"))
    if numeric is None or not str(template).isdigit():
        return True  # a trigger name against a numeric id: cannot tell, not a mismatch
    return str(numeric) == str(template)


def _address(recipient: str) -> str:
    """`Ann <ann@example.com>` and ` ANN@example.com ` are the same address."""
    match = _ADDRESS.search(recipient)
    return (match[1] if match else recipient).strip().lower()


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def counts(settlements: Iterable[Settlement]) -> dict[str, int]:
    """How many were found, absent (resent) and unreadable (left unknown)."""
    tally = {FOUND: 0, ABSENT: 0, UNREADABLE: 0}
    for settlement in settlements:
        tally[settlement.how] += 1
    return tally


__all__ = [
    "ABSENT",
    "FOUND",
    "UNREADABLE",
    "Settlement",
    "Settler",
    "counts",
    "default_grace",
    "is_local",
    "send_facts",
    "unreadable",
]
