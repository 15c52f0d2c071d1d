"""Live updates for the web page: a Server-Sent Events stream that says `change` whenever
something the page shows may have moved (a request, a reset, a recorded metric, or a message
reaching its next lifecycle step on the clock); the page then fetches itself again.

The stream runs on the server's event loop. A change wakes it at once; it still looks every
TICK seconds, for lifecycle steps that happen with no request, and ends when the emulator
stops (so stopping never waits on an open page).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..state import State

TICK = 1.0  # seconds between looks when nothing wakes the stream
GAP = 0.25  # a burst of requests becomes one event per GAP seconds
KEEPALIVE = 15.0  # a comment line this often, so a dead connection is noticed
RECENT = 500  # messages whose lifecycle steps are watched (older ones have settled)


class Live:
    def __init__(self, state: State) -> None:
        self.state = state
        self.waiting: set[asyncio.Event] = set()
        state.watchers.append(self.wake)

    def wake(self) -> None:
        for event in self.waiting:
            event.set()

    def mark(self) -> str:
        """Moves whenever the page may look different: the state's version, and how many
        lifecycle steps of recent messages have come due."""
        timing = self.state.timing
        due = self.state.store.db.execute(
            "SELECT COALESCE(SUM((COALESCE(created_f, queued_at) <= t)"
            " + (start_f + ? <= t) + (start_f + ? <= t)), 0)"
            " FROM (SELECT created_f, queued_at, start_f, ? AS t"
            " FROM deliveries ORDER BY seq DESC LIMIT ?)",
            (timing.sent, timing.delivered, self.state.clock.now(), RECENT),
        ).fetchone()[0]
        return f"{self.state.version}.{due}"

    async def stream(self, request: Request) -> StreamingResponse:
        since = request.headers.get("last-event-id") or request.query_params.get("since", "")
        return StreamingResponse(
            self._events(since),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(self, since: str) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last, quiet = since, 0.0
        while not self.state.stopping:
            mark = self.mark()
            if mark != last:
                last, quiet = mark, 0.0
                yield f"event: change\nid: {mark}\ndata: {mark}\n\n"
                await asyncio.sleep(GAP)
                continue
            if quiet >= KEEPALIVE:
                quiet = 0.0
                yield ": keepalive\n\n"
            event = asyncio.Event()
            self.waiting.add(event)
            try:
                await asyncio.wait_for(event.wait(), TICK)
            except TimeoutError:
                quiet += TICK
            finally:
                self.waiting.discard(event)
