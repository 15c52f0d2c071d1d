"""Running the emulator: in a background thread (`Emulator`) or in the foreground (`serve`)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import inspection, journeys
from . import webhooks as webhook_events
from .app import build_app
from .config import DEMO_CREDENTIALS, Credentials, parse_delivery, parse_faults, parse_limits
from .state import State

T = TypeVar("T")
START_TIMEOUT = 10.0


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, exposing the transport so a fault can drop the connection."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["cio.transport"] = self.transport  # type: ignore[typeddict-unknown-key]


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn; port 0 picks a free one.

    IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without it
    Nagle plus delayed ACKs cost ~40 ms per response.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class Emulator:
    """A local Customer.io (Track, Pipelines and App APIs) on one port.

    Args:
        credentials: keys it accepts; DEMO_CREDENTIALS by default, or Credentials.from_env().
        db_path: SQLite file to keep state across restarts; None keeps everything in memory.
        workspace: a workspace YAML path, a dict, or None for the bundled demo workspace
            (~300 people, segments, templates). Pass {} for an empty workspace.
        limits: token-bucket rate limits per family, e.g. {"app": 10, "track": {"rate": 100,
            "burst": 200}}; "customerio" applies Customer.io's documented limits (Track 100/s,
            Pipelines 1000/s, App 10/s). None (default): no limits unless the workspace sets them.
        faults: per family {"latency": s, "error_rate": share, "error_statuses": [500, 503],
            "drop_rate": share, "seed": n}. None (default): no faults.
        host, port: where to listen; port 0 picks a free port.
        delivery: message lifecycle timing {"sent": s, "delivered": s, "trigger": s} (seconds
            after a message's send time until `sent` / `delivered` show, and after a broadcast
            trigger until it is processed); defaults 0.5, 1.5, 0.5, or the workspace's `delivery`.

    Use as a context manager or call start()/stop(). `url` is the root for all three families.
    """

    def __init__(
        self,
        credentials: Credentials = DEMO_CREDENTIALS,
        db_path: str | None = None,
        workspace: str | Path | dict | None = None,
        limits: Any = None,
        faults: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delivery: Any = None,
    ) -> None:
        self.credentials = credentials
        self.host, self.port = host, port
        self._state = State(credentials, db_path, workspace, limits, faults, delivery)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.inspect = Inspector(self)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        sock = listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._state.stopping = False
        config = uvicorn.Config(
            build_app(self._state),
            http=_Protocol,
            loop="none",
            ws="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            backlog=2048,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            # Campaign journeys run between requests, on the clock (journeys.py).
            ticker = loop.create_task(journeys.ticker(self._state))
            # Reporting webhooks post the events messages reach (webhooks.py).
            reporting = loop.create_task(webhook_events.ticker(self._state))
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
            finally:
                ticker.cancel()
                reporting.cancel()
                loop.run_until_complete(asyncio.gather(ticker, reporting, return_exceptions=True))
                loop.close()
                sock.close()

        self._server = server
        self._thread = threading.Thread(target=run, name="cio-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if failure or not self._thread.is_alive() or time.monotonic() > deadline:
                self._server = None
                raise RuntimeError(f"the emulator failed to start: {failure[:1] or 'timeout'}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._state.stopping = True  # open live streams (the web page's) end within a second
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        self._loop = None

    def close(self) -> None:
        """Stop and release the database."""
        self.stop()
        self._state.store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self, *, empty: bool = False) -> None:
        """Back to the workspace's initial state (empty=True: no people, segments or templates)."""
        self.call(lambda: self._state.reset(empty=empty))

    def configure(self, *, limits: Any = ..., faults: Any = ..., delivery: Any = ...) -> None:
        """Change rate limits, faults and/or delivery timing while running (reset() restores
        the originals)."""
        new_limits = None if limits is ... else parse_limits(limits)
        new_faults = None if faults is ... else parse_faults(faults)
        timing = None if delivery is ... else parse_delivery(delivery)
        self.call(lambda: self._state.set_behaviour(new_limits, new_faults, timing))

    def advance_clock(self, by: float | str) -> dict[str, Any]:
        """Move the emulator's clock forward (seconds or a duration like "1d") and run the
        campaign steps that became due; answers the clock as `GET /_emulator/clock` does."""
        return self.call(lambda: journeys.advance_now(self._state, by))

    def add_reporting_webhook(
        self, endpoint: str, events: Sequence[str] | None = None, name: str = "emulator --webhook"
    ) -> dict[str, Any]:
        """Create a reporting webhook (as `POST /v1/reporting_webhooks` does); every event by
        default. Answers the webhook as the App API does."""
        body = {"name": name, "endpoint": endpoint, "events": list(events or webhook_events.EVENTS)}

        def add() -> dict[str, Any]:
            with self._state.store.tx():
                return webhook_events.add_webhook(self._state, body)

        return self.call(add)

    def clock(self) -> dict[str, Any]:
        """The emulator's clock: {now (unix seconds), iso, offset (seconds ahead of wall time)}."""
        return self.call(self._state.clock.view)

    def call(self, fn: Callable[[], T]) -> T:
        """Run fn on the server's thread, between requests, so it sees consistent state."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)


class Inspector:
    """`emulator.inspect`: read-only lists of dicts (copies; changing them changes nothing)."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def _view(self, fn: Callable[..., T], *args: Any) -> T:
        state = self._emulator._state
        return self._emulator.call(lambda: fn(state, *args))

    def requests(self, family: str | None = None) -> list[dict[str, Any]]:
        return self._view(inspection.requests, family)

    def people(self) -> list[dict[str, Any]]:
        return self._view(inspection.people)

    def person(self, id: str | None = None, *, email: str | None = None) -> dict | None:
        for person in self.people():
            if (id is not None and person["id"] == id) or (email and person["email"] == email):
                return person
        return None

    def events(self) -> list[dict[str, Any]]:
        return self._view(inspection.events)

    def deliveries(self) -> list[dict[str, Any]]:
        return self._view(inspection.deliveries)

    def segments(self) -> list[dict[str, Any]]:
        return self._view(inspection.segments)

    def devices(self) -> list[dict[str, Any]]:
        return self._view(inspection.devices)

    def objects(self) -> list[dict[str, Any]]:
        """Objects with their attributes and related people (relationship attributes too)."""
        return self._view(inspection.objects)

    def messages(self) -> list[dict[str, Any]]:
        """Every message (transactional and broadcast) as GET /v1/messages shows it now,
        oldest first, including broadcast messages not yet visible there."""
        return self._view(inspection.messages)

    def triggers(self) -> list[dict[str, Any]]:
        """Broadcast triggers with their status, recipients count and errors."""
        return self._view(inspection.triggers)

    def suppressions(self) -> list[str]:
        return self._view(inspection.suppressions)


def banner(url: str, credentials: Credentials, environ=None) -> str:
    """What `serve` prints: where to point each family and which keys it accepts. Demo keys are
    shown; a key taken from the environment is never printed, only where it came from."""
    shown = credentials.describe() if environ is None else credentials.describe(environ)
    lines = [
        f"Customer.io emulator listening on {url}",
        f"  Web page:  {url}/  (inbox, people, segments, campaigns, request log)",
        f"  Track:     {url}/api/v1/..., /api/v2/...  (Basic site_id:track_key)",
        f"  Pipelines: {url}/v1/identify, /v1/batch, ...  (Basic pipelines_key:)",
        f"  App:       {url}/v1/customers, /v1/send/email, ...  (Bearer app_key)",
        *(f"  {name:14s} {value}" for name, value in shown.items()),
        f"  Inspect:   {url}/_emulator/requests | people | events | deliveries | messages | ...",
        f'  Clock:     {url}/_emulator/clock  (POST {{"advance": "1d"}} runs campaign steps due)',
    ]
    return "\n".join(lines)


def serve(
    port: int = 8710,
    db_path: str | None = None,
    workspace: str | Path | dict | None = None,
    limits: Any = None,
    faults: Any = None,
    credentials: Credentials | None = None,
    host: str = "127.0.0.1",
    out=None,
    webhooks: Sequence[str] = (),
) -> None:
    """Run in the foreground until Ctrl-C. Prints the URL and the credentials in use; keys taken
    from the environment are never printed, only where they came from. Each of `webhooks` gets
    every reporting webhook event (`--webhook URL`)."""
    out = out or sys.stdout
    creds = credentials or Credentials.from_env()
    emulator = Emulator(creds, db_path, workspace, limits, faults, host, port).start()
    print(banner(emulator.url, creds), file=out)
    for url in webhooks:
        hook = emulator.add_reporting_webhook(url)
        print(f"reporting webhook {hook['id']}: every event to {url}", file=out)
    if webhooks:
        where = (
            f"from {webhook_events.SIGNING_KEY_ENV}"
            if os.environ.get(webhook_events.SIGNING_KEY_ENV)
            else webhook_events.DEMO_SIGNING_KEY
        )
        print(f"webhook signing key: {where}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    try:
        while emulator._thread is not None and emulator._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
