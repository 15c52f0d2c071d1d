"""A local HTTP server that answers as a hostile or broken one would: redirects, HTML pages,
bodies that drip, never end, or inflate, and JSON of shapes the API never sends.

Each test sets `server.answer(request) -> Reply`; every request is recorded before it is answered.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str  # as sent, with its query string
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | Any = b"{}"  # bytes as they are, anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    drip_every: float | None = None  # one byte of `body` this often (seconds), then the rest
    endless: bool = False  # chunked pieces of `body`, never a last chunk
    hang: bool = False  # no answer at all, until the server stops


def json_reply(body: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class HostileServer:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    answer: Callable[[Seen], Reply] = lambda seen: json_reply({})
    stopping: threading.Event = field(default_factory=threading.Event)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


def serve(state: HostileServer) -> Iterator[HostileServer]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            seen = Seen(self.command, self.path, body)
            with lock:
                state.seen.append(seen)
            reply = state.answer(seen)
            with contextlib.suppress(OSError):  # the client gave up: what these tests want
                self._reply(reply)

        def _reply(self, reply: Reply) -> None:
            if reply.hang:
                state.stopping.wait()
                return
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.endless:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                piece = b"%x\r\n%s\r\n" % (len(data), data)
                while not state.stopping.is_set():
                    self.wfile.write(piece)
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if reply.drip_every is None:
                self.wfile.write(data)
                return
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if state.stopping.wait(reply.drip_every):
                    return

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()


def wait_for(predicate: Callable[[], bool], seconds: float = 60.0) -> None:
    """Wait until `predicate` holds (a hang guard, not a timing assertion)."""
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("gave up waiting")
        time.sleep(0.02)
