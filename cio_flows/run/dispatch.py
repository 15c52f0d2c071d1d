"""Delivering events to listeners: in order, one event at a time, whatever a listener does.

A BulkListener also takes consecutive events in one call (`many`), which `Dispatcher.many`
uses for a batch's outcomes: the journal's and a worker process's forwarder are, where a call
an event was most of their cost. Any other listener (a caller's) is called with each event.

A listener that raises neither stops the run nor keeps the event from the listeners after it;
its first error is reported on stderr (later ones are counted, not printed), so a broken report
writer cannot lose `RunFinished` for the journal. The one exception with a meaning is
JournalError: the journal could not record an outcome, so nothing more may be sent; it goes to
`on_stop`, which stops the run.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Sequence

from ..errors import JournalError
from .events import Event, Listener


class BulkListener:
    """A listener that can also take many consecutive events in one call (a base class, not a
    method looked up: a caller's listener with a `many` attribute is still called per event)."""

    def __call__(self, event: Event) -> None:
        self.many((event,))

    def many(self, events: Sequence[Event]) -> None:
        raise NotImplementedError


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Dispatcher:
    """A listener made of listeners: `dispatcher(event)` delivers to each, guarded, under a lock."""

    def __init__(
        self,
        listeners: Iterable[Listener] = (),
        *,
        on_stop: Callable[[JournalError], None] | None = None,
        report: Callable[[str], None] = _to_stderr,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.listeners = list(listeners)
        self._on_stop = on_stop
        self._report = report
        self._redact = redact
        self._lock = threading.Lock()  # one event at a time: listeners see the run's order
        self.errors: dict[int, int] = {}  # id(listener) -> exceptions it raised

    def __call__(self, event: Event) -> None:
        self.many((event,))

    def many(self, events: Sequence[Event]) -> None:
        """Consecutive events: each listener has them all, in order, before the next one does;
        in one call when it is a BulkListener."""
        if not events:
            return
        with self._lock:
            for listener in self.listeners:
                if isinstance(listener, BulkListener):
                    try:
                        listener.many(events)
                    except JournalError as exc:
                        self._stopped(listener, events[0], exc)
                    except Exception as exc:
                        self._failed(listener, events[0], exc)
                    continue
                for event in events:
                    try:
                        listener(event)
                    except JournalError as exc:
                        self._stopped(listener, event, exc)
                    except Exception as exc:
                        self._failed(listener, event, exc)

    def _stopped(self, listener: Listener, event: Event, exc: JournalError) -> None:
        if self._on_stop is None:
            self._failed(listener, event, exc)
        else:
            self._on_stop(exc)

    def _failed(self, listener: Listener, event: Event, exc: Exception) -> None:
        count = self.errors[id(listener)] = self.errors.get(id(listener), 0) + 1
        if count > 1:
            return
        text = (
            f"cio-flows: listener {listener_name(listener)} failed on {type(event).__name__}: "
            f"{type(exc).__name__}: {exc} (the run goes on; its later errors are not shown)"
        )
        with contextlib.suppress(Exception):  # stderr closed: nothing left to tell
            self._report(self._redact(text))


def listener_name(listener: Listener) -> str:
    """A readable name: the function's or the class's."""
    name = getattr(listener, "__qualname__", None) or type(listener).__qualname__
    module = getattr(listener, "__module__", None) or type(listener).__module__
    return f"{module}.{name}" if module else name
