"""Shared fixtures: a scripted HTTP server on 127.0.0.1 that records every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from process_tests import starts_a_process

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"

SECRETS = {
    "CUSTOMERIO_SITE_ID": "site-123",
    "CUSTOMERIO_TRACK_TOKEN": "track-secret-abcdef",
    "CUSTOMERIO_PIPELINES_KEY": "pipelines-secret-abcdef",
    "CUSTOMERIO_APP_TOKEN": "app-secret-abcdef",
}


@pytest.fixture(autouse=True)
def _journal_in_tmp(tmp_path, monkeypatch):
    """Runs write their journal under the test's tmp_path, never into the repository."""
    monkeypatch.setenv("CIO_FLOWS_JOURNAL", str(tmp_path / "journal.db"))


@dataclass
class Recorded:
    method: str
    path: str  # with query string
    headers: dict[str, str]
    body: Any


Handler = Callable[[Recorded], tuple[int, dict[str, str], Any]]


def default_answer(request: Recorded) -> tuple[int, dict[str, str], Any]:
    """Customer.io-shaped success answers for the paths the step kinds use."""
    path = request.path.split("?")[0]
    if path.startswith("/v1/send/"):
        return 200, {}, {"delivery_id": "dlv_1", "queued_at": 1700000000}
    if path == "/v1/customers" and request.method == "POST":
        return (
            200,
            {},
            {
                "identifiers": [{"id": "u1", "email": "u1@example.com", "cio_id": "a1"}],
                "ids": ["u1"],
                "next": "",
            },
        )
    if path.endswith("/attributes"):
        return 200, {}, {"customer": {"id": "u1", "identifiers": {"id": "u1"}, "attributes": {}}}
    if path == "/v1/segments":
        return 200, {}, {"segments": []}
    if "/membership" in path:
        return 200, {}, {"identifiers": [], "ids": [], "next": ""}
    return 200, {}, {}


@dataclass
class RecordingServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    handler: Handler = default_answer


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    state = RecordingServer(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            recorded = Recorded(self.command, self.path, dict(self.headers), body)
            with lock:
                state.requests.append(recorded)
            status, headers, answer = state.handler(recorded)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def env_for(server_url: str, **extra: str) -> dict[str, str]:
    """An environment with test credentials and every family pointed at server_url."""
    env = {
        **SECRETS,
        "CUSTOMERIO_TRACK_URL": server_url,
        "CUSTOMERIO_PIPELINES_URL": server_url,
        "CUSTOMERIO_APP_URL": server_url,
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts a process is `slow` (process_tests.py), marked or not."""
    for item in items:
        if item.path.suffix != ".py":
            continue  # a flow file collected by the cio-flows plugin
        function = getattr(item, "originalname", None) or item.name
        cls = getattr(item, "cls", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        if starts_a_process(item.path, function, cls.__name__ if cls else None, fixtures):
            item.add_marker(pytest.mark.slow)
