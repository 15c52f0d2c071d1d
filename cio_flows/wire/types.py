"""What every operation shares: the request it builds and the keys that make it safe to repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Request:
    """One HTTP call in Customer.io's wire format, before auth and host are added."""

    family: str  # "pipelines" | "track" | "app": picks host, auth and connection pool
    method: str
    path: str  # e.g. "/v1/identify", "/api/v1/customers/jane%40example.com"
    body: Any = None
    params: tuple[tuple[str, str], ...] = ()
    bucket: str = ""  # rate-limit bucket; defaults to the family
    # Safe to resend when the answer is lost: a read, or a write the server deduplicates
    # (messageId, event id) or that is idempotent (PUT, DELETE). Such a request is never
    # UNKNOWN: a lost answer makes it failed, and resume sends it again.
    repeatable: bool = True

    @property
    def rate_bucket(self) -> str:
        return self.bucket or self.family

    @property
    def query(self) -> str:
        """`?name=value&...` as sent, or "" without params."""
        return f"?{urlencode(self.params)}" if self.params else ""

    def url(self, root: str) -> str:
        """The full URL on an endpoint root (Endpoints.root(family)), query included."""
        return root + self.path + self.query


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


class StepKeys:
    """Deterministic dedupe keys for one (run, row, step), so a resent request is not a duplicate.

    Computed on first use: most steps need one of the two, many need neither. (Plain slots,
    not cached_property, whose lock costs more than the uuid5: one is read per event.)
    """

    __slots__ = ("_event_id", "_make_event_id", "_make_message_id", "_message_id")

    def __init__(self, message_id: Callable[[], str], event_id: Callable[[], str]) -> None:
        self._make_message_id = message_id
        self._make_event_id = event_id
        self._message_id: str | None = None
        self._event_id: str | None = None

    @property
    def message_id(self) -> str:
        """Pipelines messageId (a UUID)."""
        if self._message_id is None:
            self._message_id = self._make_message_id()
        return self._message_id

    @property
    def event_id(self) -> str:
        """Track event id (a ULID)."""
        if self._event_id is None:
            self._event_id = self._make_event_id()
        return self._event_id


Send = Callable[[Request], Response]


class Operation(Protocol):
    """How a step kind builds its requests and reads the answers (declared in kinds/registry.py)."""

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        """The request `plan` shows; the only one unless the operation pages."""
        ...

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        """Send what it takes and return the result a flow can save."""
        ...


def path_id(value: Any) -> str:
    """Percent-encode an identifier for a URL path (an unencoded '+' silently matches nothing).

    `.` and `..` are encoded too: as they are, they would move the request up the path.
    """
    encoded = quote(str(value), safe="")
    return "%2E" * len(encoded) if encoded in (".", "..") else encoded


class SingleRequest:
    """An operation that is one request whose JSON answer is the result."""

    def first_request(self, payload: dict[str, Any], keys: StepKeys, people_family: str) -> Request:
        raise NotImplementedError

    def read(self, body: Any) -> Any:
        return body

    def execute(
        self, payload: dict[str, Any], keys: StepKeys, people_family: str, send: Send
    ) -> Any:
        return self.read(send(self.first_request(payload, keys, people_family)).body)
