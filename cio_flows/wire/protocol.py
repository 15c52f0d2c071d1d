"""What the engine needs from a transport, and a transport that only records.

The engine sends every request through `Transport.send` (like httpx's `BaseTransport`): the
HTTP transport (transport.py) puts it on the wire, `RecordingTransport` (like httpx's
`MockTransport`) keeps it and answers 200. A plan is the run over a RecordingTransport, so the
requests a plan lists are the ones the run sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping
from typing import Protocol

from .types import Request, Response


class Transport(Protocol):
    """Sends one request and returns its answer; raises TransportError when it did not succeed."""

    @property
    def stats(self) -> Mapping[str, int]: ...

    def send(self, request: Request, accept: Container[int] = ()) -> Response: ...

    def interrupt(self) -> None:
        """Stop waiting (a retry's backoff) at once: the run is stopping."""
        ...


class RecordingTransport:
    """Keeps every request it is asked to send (`sent`, oldest first) and answers 200, no body."""

    def __init__(self) -> None:
        self.sent: list[Request] = []
        self._stats: Counter[str] = Counter()

    @property
    def stats(self) -> Mapping[str, int]:
        return self._stats

    def send(self, request: Request, accept: Container[int] = ()) -> Response:
        self.sent.append(request)
        self._stats["requests"] += 1
        return Response(200, {}, {}, 1)

    def interrupt(self) -> None:
        pass

    def take(self) -> list[Request]:
        """The requests recorded since the last take."""
        taken, self.sent = self.sent, []
        return taken
